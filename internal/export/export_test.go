package export

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tend-sh/tend/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// apps are three apps as tend resolves them: a Node cluster app on PORT, a Python app on a port
// tend holds (LISTEN_FDS), and a worker run as another user whose env needs quoting.
func apps() []config.AppSpec {
	api := config.Defaults()
	api.Name, api.Script, api.Cwd, api.Interpreter, api.InterpreterLabel = "api", "/srv/api/server.js", "/srv/api", "/usr/bin/node", "node"
	api.Instances, api.ExecMode, api.NodeIPC = 2, config.ClusterMode, true
	api.ConfigEnv = map[string]string{"PORT": "3000", "NODE_ENV": "production"}
	api.MaxMemoryRestart, api.ListenTimeout, api.WaitReady = 300<<20, 8*time.Second, true

	web := config.Defaults()
	web.Name, web.Script, web.Cwd, web.Interpreter, web.InterpreterLabel = "web", "/srv/web/app.py", "/srv/web", "/usr/bin/python3", "python3"
	web.ExecMode, web.Ports = config.ClusterMode, []config.Listen{{Port: 8000}}

	worker := config.Defaults()
	worker.Name, worker.Script, worker.Args, worker.Cwd = "worker", "/bin/sleep", []string{"3600"}, "/"
	worker.User, worker.KillTimeout, worker.Autorestart = "65534", 5*time.Second, false
	worker.ConfigEnv = map[string]string{"GREETING": "hello world", "PCT": "100% $HOME"}
	worker.CronRestart, worker.Watch = "0 3 * * *", []string{"."}
	return []config.AppSpec{api, web, worker}
}

// Each format's output is its golden file (go test ./internal/export -update rewrites them).
func TestGolden(t *testing.T) {
	for _, format := range Formats {
		files, err := Export(format, apps(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			path := filepath.Join("testdata", format, f.Name)
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				os.WriteFile(path, f.Content, 0o644)
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: %v (go test -update writes it)", path, err)
			}
			if !bytes.Equal(f.Content, want) {
				t.Errorf("%s differs; got:\n%s", path, f.Content)
			}
		}
	}
	if _, err := Export("helm", apps(), Options{}); err == nil || !strings.Contains(err.Error(), "systemd, kubernetes, compose, nomad") {
		t.Errorf("an unknown format: %v", err)
	}
}

// decodeStrict reads one YAML document into v, refusing any field v's type does not have.
func decodeStrict(t *testing.T, doc []byte, v any) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not a valid %T: %v\n%s", v, err, doc)
	}
}

// The Kubernetes output decodes strictly into the official types, with what the apps say.
func TestKubernetesTypes(t *testing.T) {
	files, err := Export("kubernetes", apps(), Options{Image: "registry.example/app:1"})
	if err != nil {
		t.Fatal(err)
	}
	var deploys []appsv1.Deployment
	var services []corev1.Service
	for _, f := range files {
		for _, doc := range bytes.Split(f.Content, []byte("\n---\n")) {
			var head struct{ Kind string }
			js, _ := yaml.YAMLToJSON(doc)
			json.Unmarshal(js, &head)
			switch head.Kind {
			case "Deployment":
				var d appsv1.Deployment
				decodeStrict(t, doc, &d)
				deploys = append(deploys, d)
			case "Service":
				var s corev1.Service
				decodeStrict(t, doc, &s)
				services = append(services, s)
			default:
				t.Fatalf("a %q in %s", head.Kind, f.Name)
			}
		}
	}
	if len(deploys) != 3 || len(services) != 2 {
		t.Fatalf("%d deployments and %d services, want 3 and 2 (worker has no port)", len(deploys), len(services))
	}
	api := deploys[0]
	c := api.Spec.Template.Spec.Containers[0]
	if *api.Spec.Replicas != 2 || c.Image != "registry.example/app:1" || strings.Join(c.Command, " ") != "node /srv/api/server.js" {
		t.Errorf("api deployment: replicas %d, image %q, command %q", *api.Spec.Replicas, c.Image, c.Command)
	}
	if c.Resources.Limits.Memory().Value() != 300<<20 || c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != 3000 {
		t.Errorf("api: memory limit %v, readiness %+v", c.Resources.Limits.Memory(), c.ReadinessProbe)
	}
	if services[1].Spec.Ports[0].Port != 8000 {
		t.Errorf("web service %+v", services[1].Spec)
	}
	if u := deploys[2].Spec.Template.Spec.Containers[0].SecurityContext; u == nil || *u.RunAsUser != 65534 {
		t.Errorf("worker's runAsUser: %+v", u)
	}
}

// The Nomad output decodes into Nomad's own API types.
func TestNomadTypes(t *testing.T) {
	files, err := Export("nomad", apps(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		var wrap struct{ Job *nomadapi.Job }
		dec := json.NewDecoder(bytes.NewReader(f.Content))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&wrap); err != nil {
			t.Fatalf("%s is not a Nomad job: %v", f.Name, err)
		}
		j := wrap.Job
		if *j.ID != strings.TrimSuffix(f.Name, ".nomad.json") || len(j.TaskGroups) != 1 || *j.Type != "service" {
			t.Errorf("%s: %+v", f.Name, j)
		}
		if f.Name == "api.nomad.json" && (*j.TaskGroups[0].Count != 2 || *j.TaskGroups[0].Tasks[0].Resources.MemoryMB != 300) {
			t.Errorf("api: count %d, memory %d", *j.TaskGroups[0].Count, *j.TaskGroups[0].Tasks[0].Resources.MemoryMB)
		}
	}
}

// systemd itself checks the units.
func TestSystemdVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	if _, err := os.Stat("/usr/bin/node"); err != nil {
		t.Skip("node is not at /usr/bin/node, which the units run")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 is not at /usr/bin/python3")
	}
	files, err := Export("systemd", apps(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		os.WriteFile(p, f.Content, 0o644)
		name := f.Name
		if strings.HasSuffix(name, "@.service") {
			// A template is verified through an instance of it.
			inst := filepath.Join(dir, strings.Replace(name, "@.service", "@0.service", 1))
			os.Symlink(p, inst)
			name = filepath.Base(inst)
		}
		units = append(units, filepath.Join(dir, name))
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, units...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
