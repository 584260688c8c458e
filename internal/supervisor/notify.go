package supervisor

// running ties a pid to the instance and run it belongs to.
type running struct {
	in *Instance
	r  *run
}

// ReadyFrom takes a readiness notice (sd_notify's READY=1) from pid: it counts only when pid is
// the main process of an instance (systemd's NotifyAccess=main).
func (s *Supervisor) ReadyFrom(pid int) {
	if v, ok := s.running.Load(pid); ok {
		who := v.(*running)
		who.in.post(event{r: who.r, kind: evReady})
	}
}
