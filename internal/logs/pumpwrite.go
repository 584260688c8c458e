package logs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// How Pump writes a chunk of lines to its destinations, and accounts for those that fail (a
// full disk): dropped lines are counted, said once, and told of in the file when it works again.

func (p *pump) write(b []byte) {
	if len(b) == 0 {
		return
	}
	if p.cfg.Lines != nil {
		p.cfg.Lines.Add(int64(bytes.Count(b, []byte{'\n'})))
	}
	for i, f := range p.files {
		if p.lost[i] > 0 {
			// Space came back (or the disk is still full: then this line is lost too).
			mark := p.marker(fmt.Sprintf("[tend: %d lines were not written here: %v]", p.lost[i], p.failingErr(i)))
			if err := f.Write(mark); err != nil {
				var d *DropError
				if errors.As(err, &d) {
					err = d.Err // the marker is not a line of the app's
				}
				p.report(i, &DropError{Lines: bytes.Count(b, []byte{'\n'}), Err: err})
				continue
			}
			// The marker took the room left in a page, perhaps; the episode ends only when the
			// app's lines are written too.
			p.episode[i] += p.lost[i]
			p.lost[i] = 0
		}
		err := f.Write(b)
		if err == nil && p.episode[i] > 0 {
			if p.cfg.OnResume != nil {
				p.cfg.OnResume(p.episode[i])
			}
			p.episode[i] = 0
		}
		p.report(i, err)
	}
	if p.cfg.Echo != nil {
		_, err := p.cfg.Echo.Write(b)
		p.report(len(p.files), err)
	}
}

// marker is a line of tend's own in the app's log: with the date prefix, or as a JSON record
// of type "tend".
func (p *pump) marker(text string) []byte {
	if p.cfg.JSON != nil {
		return p.appendRecord(nil, []byte(text), "tend")
	}
	return append(append(slices.Clone(p.prefix), text...), '\n')
}

// failingErr is the error a file failed with last.
func (p *pump) failingErr(i int) error {
	if i < len(p.errs) && p.errs[i] != nil {
		return p.errs[i]
	}
	return p.firstErr
}

func (p *pump) report(i int, err error) {
	if err == nil {
		p.failing[i] = false
		return
	}
	var drop *DropError
	if i < len(p.files) && errors.As(err, &drop) && drop.Lines > 0 {
		if p.errs == nil {
			p.errs = make([]error, len(p.files))
		}
		p.lost[i] += drop.Lines
		p.errs[i] = drop.Err
		if p.cfg.OnDrop != nil {
			p.cfg.OnDrop(drop.Lines, drop.Err)
		}
	}
	if p.firstErr == nil {
		p.firstErr = err
	}
	if !p.failing[i] {
		p.failing[i] = true
		if p.cfg.OnError != nil {
			p.cfg.OnError(err)
		}
	}
}
