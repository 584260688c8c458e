package daemon

import (
	"log/slog"
	"strings"

	"github.com/tend-sh/tend/internal/keeper"
	"github.com/tend-sh/tend/internal/proc"
	"github.com/tend-sh/tend/internal/sockets"
	"github.com/tend-sh/tend/internal/supervisor"
)

// keptFrom sorts a keeper's records into what the supervisor adopts: runs and socket groups. A
// record of neither kind (a newer daemon's) is closed and said.
func keptFrom(st keeper.State, store keeper.Store, log *slog.Logger) supervisor.Kept {
	kept := supervisor.Kept{Parent: st.KeeperPid}
	for _, rec := range st.Records {
		switch {
		case strings.HasPrefix(rec.Key, proc.RunKeyPrefix):
			h, info, err := proc.HolderFromRecord(rec, store)
			if err != nil {
				log.Error("keeper: a run not adopted", "err", err)
				store.Drop(rec.Key)
				continue
			}
			kept.Runs = append(kept.Runs, supervisor.KeptRun{Holder: h, Info: info})
		case strings.HasPrefix(rec.Key, sockets.KeyPrefix):
			g, err := sockets.ParseKept(rec)
			if err != nil {
				log.Error("keeper: sockets not adopted", "err", err)
				store.Drop(rec.Key)
				continue
			}
			kept.Sockets = append(kept.Sockets, g)
		default:
			log.Error("keeper: a record of an unknown kind dropped", "key", rec.Key, "fds", len(rec.Fds))
			rec.Close()
			store.Drop(rec.Key)
		}
	}
	return kept
}
