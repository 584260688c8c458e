package daemon

import (
	"encoding/json"
	"testing"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/config"
)

// An API request body as any client may send it: it decodes or not, and the daemon's checks of
// what decoded never panic.
func FuzzStartRequest(f *testing.F) {
	f.Add([]byte(`{"apps":[{"name":"a","script":"/bin/sleep","cwd":"/","instances":1,"exec_mode":"fork_mode","kill_signal":"SIGINT"}]}`))
	f.Add([]byte(`{"apps":[{"name":"\u001b[2J","script":"","cwd":"","instances":-5,"ports":[{"port":99999}]}],"mode":"reload"}`))
	f.Add([]byte(`{"target":"all","settings":{"name":"","node_args":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.StartRequest
		if json.Unmarshal(data, &req) == nil {
			for i := range req.Apps {
				_ = req.Apps[i].Validate()
			}
		}
		// The settings of a restart go through Patch, on a valid spec.
		var tr api.TargetRequest
		if json.Unmarshal(data, &tr) == nil && tr.Settings != nil {
			s := config.Defaults()
			s.Name, s.Script, s.Cwd = "a", "/bin/sleep", "/"
			if s.Patch(tr.Settings) == nil {
				_ = s.Validate()
			}
		}
	})
}
