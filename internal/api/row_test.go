package api

import (
	"reflect"
	"testing"
)

// A row converted to a Process and back is the same row: Process and RowOf carry the same fields.
func TestRowRoundTrip(t *testing.T) {
	p := Process{Pid: 7, Name: "web", PmID: 3, Monit: Monit{Memory: 1 << 20, CPU: 1.5}, Pm2Env: Env{
		Name: "web", Namespace: "ns", Status: "online", PmID: 3, RestartTime: 2, UnstableRestarts: 1,
		PmUptime: 10, CreatedAt: 9, ExecMode: "cluster_mode", Instances: 2, NodeAppInstance: 1,
		ConfigFile: "/a.json", PmOutLogPath: "/o", PmErrLogPath: "/e", PmLogPath: "/l", PmPidPath: "/p",
		PmExecPath: "/x", PmCwd: "/", Version: "1.0", Watch: true, RetryAt: 5,
		AxmMonitor: map[string]any{"q": 1.0}, Procs: 3, MaxMemoryRestart: 1 << 30, MemoryRestarts: 4,
	}}
	r := RowOf(p)
	if back := RowOf(r.Process()); !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
	}
	// Every field of RowEnv is set above: a field added to RowEnv and forgotten in Process or
	// RowOf shows up here as a zero.
	v := reflect.ValueOf(r.Pm2Env)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("RowEnv.%s is not carried", v.Type().Field(i).Name)
		}
	}
}
