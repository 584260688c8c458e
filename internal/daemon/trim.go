package daemon

import (
	"runtime"
	"runtime/debug"
	"time"
)

// trimLoop gives back to the system the memory a burst of work left behind. The Go runtime keeps
// mapped up to its heap goal, twice the live heap, and returns the rest only slowly: after a
// start of 1,000 apps and a few lists of them the daemon held 47 MB, of which its live heap was
// 12 MB. When the heap has grown by trimFrom since the last trim (garbage not yet collected, or
// free memory not yet returned), a forced collection returns what is free: a few milliseconds of
// CPU with a heap this size, at most once per trimEvery, and never while nothing grows.
func (d *daemon) trimLoop() {
	quit := d.quit()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	var kept uint64 // heap memory held right after the last trim
	for {
		select {
		case <-t.C:
		case <-quit:
			return
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapSys-ms.HeapReleased < kept+trimFrom {
			continue
		}
		debug.FreeOSMemory()
		runtime.ReadMemStats(&ms)
		kept = ms.HeapSys - ms.HeapReleased
	}
}

const (
	trimEvery = 30 * time.Second
	trimFrom  = 4 << 20 // growth of the heap worth a collection
)
