package supervisor

import "github.com/tend-sh/tend/internal/events"

// emit publishes e as the instance's: its app, namespace and id filled in.
func (in *Instance) emit(e events.Event) {
	if in.sup.events == nil {
		return
	}
	e.App, e.Namespace, e.ID = in.spec.Name, in.spec.Namespace, new(in.id)
	in.sup.events.Publish(e)
}

// emitter is emit for another goroutine (a log reader): it publishes under the app's name and
// id as they are now, since the instance's spec must not be read off its goroutine.
func (in *Instance) emitter() func(events.Event) {
	hub, name, ns, id := in.sup.events, in.spec.Name, in.spec.Namespace, in.id
	return func(e events.Event) {
		e.App, e.Namespace, e.ID = name, ns, new(id)
		hub.Publish(e)
	}
}
