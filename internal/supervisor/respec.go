package supervisor

import (
	"fmt"
	"slices"

	"github.com/tend-sh/tend/internal/config"
)

// Change is what a restart, reload or start changes in the apps it selects before it acts.
type Change struct {
	// Env, when not nil, is the caller's environment (`restart --update-env`).
	Env map[string]string
	// Settings are config keys with their new values (`restart api --node-args=--harmony`,
	// `start 0 --name web`): PM2's attribute update. "name" renames the app.
	Settings map[string]any
	// ToggleWatch turns watching on when off and off when on (PM2's restart --watch).
	ToggleWatch bool
}

// Respec applies ch to the selected apps: their instances take it now, and their processes when
// they next start, which the restart or reload that follows does. A selection of some of an
// app's instances is refused: the settings are the app's, and taking them for some instances
// would leave the others shown with settings their processes do not have.
func (s *Supervisor) Respec(target string, ch Change) error {
	ins, err := s.Select(target)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var apps []*App
	picked := map[*App]int{}
	for _, in := range ins {
		if !slices.Contains(apps, in.app) {
			apps = append(apps, in.app)
		}
		picked[in.app]++
	}
	what := "--update-env changes app %q's environment"
	if ch.Settings != nil {
		what = "new settings change app %q"
	}
	for _, a := range apps {
		if picked[a] < len(a.instances) {
			s.mu.Unlock()
			return fmt.Errorf("%w: "+what+", and %s names only some of its %d instances: name the app (%s)",
				config.ErrInvalid, a.Name, target, len(a.instances), a.Name)
		}
	}
	type respec struct {
		app  *App
		ins  []*Instance
		spec *config.AppSpec
	}
	var todo []respec
	for _, a := range apps {
		if len(a.instances) == 0 {
			continue
		}
		sp := *a.instances[0].Info().Spec
		if ch.Env != nil {
			sp.UpdateEnv(ch.Env)
		}
		if ch.Settings != nil {
			if err := sp.Patch(ch.Settings); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("app %q: %w", a.Name, err)
			}
			if err := s.Check(&sp); err != nil { // a uid that cannot reach the app, say
				s.mu.Unlock()
				return err
			}
		}
		if sp.Name != a.Name {
			if len(apps) > 1 {
				s.mu.Unlock()
				return fmt.Errorf("%w: --name names one app, and %s selects %d: name the app to rename", config.ErrInvalid, target, len(apps))
			}
			if other := s.findLocked(sp.Name); other != nil {
				s.mu.Unlock()
				return fmt.Errorf("%w: an app named %q exists already: delete it or pick another name", config.ErrInvalid, sp.Name)
			}
		}
		if ch.ToggleWatch && !a.watch.isOn() && len(sp.Watch) == 0 {
			sp.Watch = []string{"."} // PM2's --watch alone: the app's folder
		}
		todo = append(todo, respec{a, slices.Clone(a.instances), &sp})
	}
	for _, r := range todo {
		r.app.Name = r.spec.Name // under s.mu: lookups by name see the new one from now on
	}
	s.mu.Unlock()
	var errs []error
	for _, r := range todo {
		for _, in := range r.ins {
			errs = append(errs, in.do(command{kind: cmdRespec, spec: r.spec}))
		}
		_, watchGiven := ch.Settings["watch"]
		switch {
		case ch.ToggleWatch:
			s.setWatching(r.app, !r.app.watch.isOn(), r.spec) // PM2's restart --watch
		case watchGiven:
			s.setWatching(r.app, len(r.spec.Watch) > 0, r.spec)
		}
	}
	s.changed()
	return joinDistinct(errs)
}
