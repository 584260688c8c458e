package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/goccy/go-yaml"
)

type (
	cFile struct {
		Services map[string]cService `yaml:"services"`
	}
	cService struct {
		Image           string            `yaml:"image"`
		Command         []string          `yaml:"command"`
		WorkingDir      string            `yaml:"working_dir,omitempty"`
		Environment     map[string]string `yaml:"environment,omitempty"`
		Ports           []quoted          `yaml:"ports,omitempty"`
		Deploy          *cDeploy          `yaml:"deploy,omitempty"`
		Restart         string            `yaml:"restart"`
		MemLimit        string            `yaml:"mem_limit,omitempty"`
		User            string            `yaml:"user,omitempty"`
		StopSignal      string            `yaml:"stop_signal,omitempty"`
		StopGracePeriod string            `yaml:"stop_grace_period,omitempty"`
	}
	cDeploy struct {
		Replicas int `yaml:"replicas"`
	}
)

// quoted is a string written in double quotes: a port mapping such as 3000:3000 is a number
// in base 60 to a YAML 1.1 reader, which compose's documentation warns of.
type quoted string

func (q quoted) MarshalYAML() ([]byte, error) { return []byte(strconv.Quote(string(q))), nil }

// compose is one compose file with a service per app.
func compose(apps []app, o Options) ([]File, error) {
	f := cFile{Services: map[string]cService{}}
	var notes []string
	for _, a := range apps {
		s := a.spec
		svc := cService{Image: a.image(o), Command: a.command(), WorkingDir: s.Cwd, Environment: a.env,
			Restart: "no", StopSignal: s.KillSignal, StopGracePeriod: fmt.Sprintf("%dms", s.KillTimeout.Milliseconds())}
		if s.Autorestart {
			svc.Restart = "always"
		}
		if a.instances > 1 {
			svc.Deploy = &cDeploy{Replicas: a.instances}
		}
		if a.port > 0 {
			if a.instances == 1 {
				svc.Ports = []quoted{quoted(fmt.Sprintf("%d:%d", a.port, a.port))}
			} else {
				a.note(fmt.Sprintf("port %d is not published: %d replicas cannot all publish it; put a proxy in front", a.port, a.instances))
			}
		}
		if s.MaxMemoryRestart > 0 {
			svc.MemLimit = strconv.FormatInt(s.MaxMemoryRestart, 10)
		}
		if s.User != "" {
			svc.User = s.User
			if s.Group != "" {
				svc.User += ":" + s.Group
			}
		}
		f.Services[a.name] = svc
		for _, n := range a.notes {
			notes = append(notes, a.name+": "+n)
		}
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# compose.yaml, exported by tend\n" + comments("#", notes))
	b.Write(out)
	return []File{{Name: "compose.yaml", Content: b.Bytes()}}, nil
}

// Nomad's job, in its JSON API form (`nomad job run -json`, or POST /v1/jobs), as much as the
// export fills; the notes go in the job's Meta. Tests decode it with github.com/hashicorp/nomad/api.
type (
	nJob struct {
		ID          string            `json:"ID"`
		Name        string            `json:"Name"`
		Type        string            `json:"Type"`
		Datacenters []string          `json:"Datacenters"`
		Meta        map[string]string `json:"Meta,omitempty"`
		TaskGroups  []nGroup          `json:"TaskGroups"`
	}
	nGroup struct {
		Name     string     `json:"Name"`
		Count    int        `json:"Count"`
		Networks []nNetwork `json:"Networks,omitempty"`
		Tasks    []nTask    `json:"Tasks"`
	}
	nNetwork struct {
		ReservedPorts []nPort `json:"ReservedPorts,omitempty"`
		DynamicPorts  []nPort `json:"DynamicPorts,omitempty"`
	}
	nPort struct {
		Label string `json:"Label"`
		Value int    `json:"Value,omitempty"`
		To    int    `json:"To,omitempty"`
	}
	nTask struct {
		Name        string            `json:"Name"`
		Driver      string            `json:"Driver"`
		User        string            `json:"User,omitempty"`
		Config      map[string]any    `json:"Config"`
		Env         map[string]string `json:"Env,omitempty"`
		Resources   *nResources       `json:"Resources,omitempty"`
		KillTimeout int64             `json:"KillTimeout"`
		KillSignal  string            `json:"KillSignal,omitempty"`
	}
	nResources struct {
		MemoryMB int `json:"MemoryMB"`
	}
)

// nomad is a JSON job per app: a group of Count = instances docker tasks. One app's port is
// reserved when it runs one instance, else mapped from a dynamic port to the app's.
func nomad(apps []app, o Options) ([]File, error) {
	var files []File
	for _, a := range apps {
		s := a.spec
		argv := a.command()
		t := nTask{Name: a.name, Driver: "docker", Config: map[string]any{"image": a.image(o), "command": argv[0], "args": argv[1:]},
			Env: a.env, KillTimeout: int64(s.KillTimeout / time.Nanosecond), KillSignal: s.KillSignal, User: s.User}
		if s.Cwd != "" {
			t.Config["work_dir"] = s.Cwd
		}
		g := nGroup{Name: a.name, Count: a.instances, Tasks: []nTask{t}}
		if a.port > 0 {
			p := nPort{Label: "app", Value: a.port}
			n := nNetwork{ReservedPorts: []nPort{p}}
			if a.instances > 1 {
				n = nNetwork{DynamicPorts: []nPort{{Label: "app", To: a.port}}}
				a.note(fmt.Sprintf("each of the %d allocations gets a port of its own, mapped to %d in the container", a.instances, a.port))
			}
			g.Networks = []nNetwork{n}
			g.Tasks[0].Config["ports"] = []string{"app"}
		}
		if s.MaxMemoryRestart > 0 {
			g.Tasks[0].Resources = &nResources{MemoryMB: int((s.MaxMemoryRestart + 1<<20 - 1) >> 20)}
		}
		job := nJob{ID: a.name, Name: a.name, Type: "service", Datacenters: []string{"dc1"}, TaskGroups: []nGroup{g}}
		if len(a.notes) > 0 {
			job.Meta = map[string]string{}
			for i, n := range a.notes {
				job.Meta[fmt.Sprintf("tend_note_%d", i+1)] = n
			}
		}
		out, err := json.MarshalIndent(map[string]nJob{"Job": job}, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: a.name + ".nomad.json", Content: append(out, '\n')})
	}
	return files, nil
}
