package events

import "testing"

// A listener that does not read loses events, counted, and is told how many once it reads
// again; the others get every event; a nil hub drops everything.
func TestHub(t *testing.T) {
	var h Hub
	slow, fast := h.Subscribe(), h.Subscribe()
	got := 0
	for i := range queue + 10 {
		h.Publish(Event{Kind: "online", ID: new(i)})
		if e := <-fast.C; *e.ID == i {
			got++
		}
	}
	if h.Lost() != 10 {
		t.Errorf("lost %d, want 10", h.Lost())
	}
	for range queue {
		<-slow.C // room again
	}
	h.Publish(Event{Kind: "stopped"})
	if e := <-slow.C; e.Kind != "lost" || e.Dropped != 10 {
		t.Errorf("after falling behind: %+v, want a lost event counting 10", e)
	}
	if e := <-slow.C; e.Kind != "stopped" {
		t.Errorf("then %+v", e)
	}
	<-fast.C
	fast.Close()
	fast.Close() // twice is harmless
	if _, open := <-fast.C; open || got != queue+10 {
		t.Errorf("the reading listener got %d events, want %d, and a closed channel", got, queue+10)
	}
	slow.Close()
	h.Publish(Event{Kind: "online"}) // nobody listens
	var none *Hub
	none.Publish(Event{Kind: "online"})
}
