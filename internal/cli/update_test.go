package cli

import (
	"errors"
	"testing"

	"github.com/tend-sh/tend/internal/client"
)

// tend update names this binary by the path it was run from, and says what now runs.
func TestUpdate(t *testing.T) {
	for _, tt := range []struct {
		name      string
		exeErr    error
		updateErr error
		stdout    string
		err       string
	}{
		{name: "ok", stdout: "tend updated: daemon pid 43 runs version 9.9.9 from /usr/local/bin/tend; every app kept running\n"},
		{name: "no binary", exeErr: errors.New("readlink: no such file"), err: "find this tend binary: readlink: no such file"},
		{name: "refused", updateErr: errFailed, err: errFailed.Msg},
	} {
		t.Run(tt.name, func(t *testing.T) {
			io, _, out, _ := testIO()
			fc := &fakeClient{running: true, errs: map[string]error{"Update /usr/local/bin/tend": tt.updateErr}}
			opts := &UpdateOptions{IO: io, Client: func() (client.API, error) { return fc, nil },
				Exe: func() (string, error) { return "/usr/local/bin/tend", tt.exeErr }}
			err := updateRun(opts)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || out.String() != tt.stdout {
				t.Fatalf("err %v, stdout %q, want %q", err, out.String(), tt.stdout)
			}
		})
	}
}
