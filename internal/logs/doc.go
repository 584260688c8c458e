// Package logs turns the output of managed processes into log files and shows
// those files again.
//
// # Writing
//
// The daemon gives each stream (stdout, stderr) of an instance a pipe and runs
// [Pump] on its read end through [Go], which holds no goroutine while the
// stream is quiet (the shared epoll waiter resumes it on the next byte). Pump
// frames the bytes into lines, optionally prefixes each line with a timestamp in PM2's
// log_date_format ([ParseDateFormat]), and appends them to one or more shared
// [File]s handed out by [Files]. Several streams may write into one File (the
// combined -l log, or instances with --merge-logs): every write carries whole
// lines only and is made under the File's mutex, so lines of different streams
// never mix.
//
// A line is the bytes up to and including '\n'; "\r\n" is kept as it is. A
// final line without '\n' when the pipe reaches EOF is written with a '\n'
// added.
//
// # Long lines
//
// A line longer than the maximum (StreamConfig.MaxLine, [DefaultMaxLine] by
// default) is neither torn across other output nor buffered without bound. It
// is written as several lines, each holding at most MaxLine bytes of the
// original, cut where a UTF-8 sequence starts; every piece but the last ends
// with the marker " [tend: line split]", and every piece gets its own
// timestamp prefix:
//
//	2026-11-21T13:47:35: aaaa…aaaa [tend: line split]
//	2026-11-21T13:47:35: aaaa…aaaa [tend: line split]
//	2026-11-21T13:47:35: aaa
//
// A piece is cut as soon as more than MaxLine bytes without a newline have
// arrived, so the pieces of one long line may carry different timestamps.
//
// # Speed
//
// A process printing as fast as it can must not be slowed by its logs, and
// reading them must cost little CPU. Pump therefore reads with read(2) on a
// non-blocking duplicate of the fd, and when the pipe is empty parks in one
// epoll instance shared by all pumps, armed with EPOLLONESHOT only while it
// waits (wait_linux.go): an idle pipe holds no OS thread, and a busy one raises
// no wake-ups, which Go's own edge-triggered poller did for every write of the
// app. It enlarges a pipe to 1 MiB only once it is busy (a
// read finds it half full, or reads come thousands of times a second), since
// pipe buffers come out of a per-user budget of 64 MiB by default; once the
// pipe is large, pauses for 1 to 10 milliseconds after a short read (adapted so
// that a read finds a quarter to a half of the pipe) so that data gathers
// into few big reads (a small pipe would fill during the pause and block the
// app); shrinks the pipe again after it has been quiet for 30 seconds; and
// writes each read's lines to each file with one write(2). A flood of a
// million lines costs a few hundred reads, and all lines of one read share one
// timestamp.
//
// # Rotation
//
// A File opened with a [Rotation] moves itself aside, under its mutex and so
// between whole writes, once it holds MaxSize bytes (a write that would pass
// it is cut after the last whole line that fits) or once its schedule is due
// (checked before a write); the moved file is named <name>__<date><ext>, as
// pm2-logrotate names them, never over an existing one. gzip and the removal
// of files past Retain run on one background worker per [Files]. [Rotated]
// lists a file's rotated files, oldest first.
//
// # Reading
//
// [Tail] returns the last lines of a file by reading backwards from its end;
// [Follow] polls a file for lines appended later and survives truncation
// (tend flush) and replacement (logrotate).
package logs
