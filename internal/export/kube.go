package export

import (
	"bytes"
	"maps"
	"slices"
	"strconv"

	"github.com/goccy/go-yaml"
)

// Kubernetes objects, as much of them as the export fills, under their API field names. Tests
// decode the output strictly with k8s.io/api's own types.
type (
	kMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels,omitempty"`
	}
	kDeployment struct {
		APIVersion string      `yaml:"apiVersion"`
		Kind       string      `yaml:"kind"`
		Metadata   kMeta       `yaml:"metadata"`
		Spec       kDeploySpec `yaml:"spec"`
	}
	kDeploySpec struct {
		Replicas int       `yaml:"replicas"`
		Selector kSelector `yaml:"selector"`
		Template kTemplate `yaml:"template"`
	}
	kSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	kTemplate struct {
		Metadata kMeta    `yaml:"metadata"`
		Spec     kPodSpec `yaml:"spec"`
	}
	kPodSpec struct {
		Containers                    []kContainer `yaml:"containers"`
		RestartPolicy                 string       `yaml:"restartPolicy"`
		TerminationGracePeriodSeconds int64        `yaml:"terminationGracePeriodSeconds"`
	}
	kContainer struct {
		Name           string      `yaml:"name"`
		Image          string      `yaml:"image"`
		Command        []string    `yaml:"command"`
		WorkingDir     string      `yaml:"workingDir,omitempty"`
		Env            []kEnv      `yaml:"env,omitempty"`
		Ports          []kPort     `yaml:"ports,omitempty"`
		ReadinessProbe *kProbe     `yaml:"readinessProbe,omitempty"`
		Resources      *kResources `yaml:"resources,omitempty"`
		SecurityCtx    *kSecurity  `yaml:"securityContext,omitempty"`
	}
	kEnv struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	kPort struct {
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	}
	kProbe struct {
		TCPSocket           kTCP `yaml:"tcpSocket"`
		PeriodSeconds       int  `yaml:"periodSeconds"`
		FailureThreshold    int  `yaml:"failureThreshold"`
		InitialDelaySeconds int  `yaml:"initialDelaySeconds"`
	}
	kTCP struct {
		Port int `yaml:"port"`
	}
	kResources struct {
		Limits map[string]string `yaml:"limits"`
	}
	kSecurity struct {
		RunAsUser  *int64 `yaml:"runAsUser,omitempty"`
		RunAsGroup *int64 `yaml:"runAsGroup,omitempty"`
	}
	kService struct {
		APIVersion string       `yaml:"apiVersion"`
		Kind       string       `yaml:"kind"`
		Metadata   kMeta        `yaml:"metadata"`
		Spec       kServiceSpec `yaml:"spec"`
	}
	kServiceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []kServicePort    `yaml:"ports"`
	}
	kServicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort int    `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	}
)

// kubernetes is a Deployment per app (replicas = instances), and a Service when the app's port
// is known. Readiness is a TCP probe on that port within listen_timeout; the memory limit is
// max_memory_restart.
func kubernetes(apps []app, o Options) ([]File, error) {
	var files []File
	for _, a := range apps {
		s := a.spec
		labels := map[string]string{"app.kubernetes.io/name": a.name, "app.kubernetes.io/managed-by": "tend-export"}
		c := kContainer{Name: a.name, Image: a.image(o), Command: a.command(), WorkingDir: s.Cwd}
		for _, k := range slices.Sorted(maps.Keys(a.env)) {
			c.Env = append(c.Env, kEnv{k, a.env[k]})
		}
		if a.instances > 1 {
			a.note("NODE_APP_INSTANCE is 0 in every replica: Kubernetes numbers no replica (a StatefulSet would)")
		}
		c.Env = append(c.Env, kEnv{s.InstanceVar, "0"})
		if a.port > 0 {
			c.Ports = []kPort{{a.port, "TCP"}}
			period := 2
			c.ReadinessProbe = &kProbe{TCPSocket: kTCP{a.port}, PeriodSeconds: period,
				FailureThreshold: max(1, int(s.ListenTimeout.Seconds()+float64(period)-1)/period)}
			if s.WaitReady {
				a.note("wait_ready: the readiness probe is a TCP connect to the port; an HTTP probe on the app's own health route would be closer")
			}
		} else {
			a.note("no port known (--port, or PORT in the app's env): no Service and no readiness probe")
		}
		if s.MaxMemoryRestart > 0 {
			c.Resources = &kResources{Limits: map[string]string{"memory": strconv.FormatInt(s.MaxMemoryRestart, 10)}}
		}
		if s.User != "" || s.Group != "" {
			sec := &kSecurity{}
			if n, err := strconv.ParseInt(s.User, 10, 64); err == nil {
				sec.RunAsUser = &n
			} else if s.User != "" {
				a.note("uid " + s.User + ": Kubernetes takes a number (runAsUser); set it in securityContext")
			}
			if n, err := strconv.ParseInt(s.Group, 10, 64); err == nil {
				sec.RunAsGroup = &n
			}
			if sec.RunAsUser != nil || sec.RunAsGroup != nil {
				c.SecurityCtx = sec
			}
		}
		d := kDeployment{APIVersion: "apps/v1", Kind: "Deployment", Metadata: kMeta{Name: a.name, Labels: labels},
			Spec: kDeploySpec{Replicas: a.instances, Selector: kSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": a.name}},
				Template: kTemplate{Metadata: kMeta{Name: a.name, Labels: labels}, Spec: kPodSpec{Containers: []kContainer{c},
					RestartPolicy: "Always", TerminationGracePeriodSeconds: int64(max(1, int(s.KillTimeout.Seconds()+0.999)))}}}}
		var b bytes.Buffer
		b.WriteString("# " + a.name + ", exported by tend: a Deployment")
		if a.port > 0 {
			b.WriteString(" and a Service")
		}
		b.WriteString("\n" + comments("#", a.notes))
		out, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		b.Write(out)
		if a.port > 0 {
			svc := kService{APIVersion: "v1", Kind: "Service", Metadata: kMeta{Name: a.name, Labels: labels},
				Spec: kServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": a.name},
					Ports: []kServicePort{{Name: "app", Port: a.port, TargetPort: a.port, Protocol: "TCP"}}}}
			out, err := yaml.Marshal(svc)
			if err != nil {
				return nil, err
			}
			b.WriteString("---\n")
			b.Write(out)
		}
		files = append(files, File{Name: a.name + ".yaml", Content: b.Bytes()})
	}
	return files, nil
}
