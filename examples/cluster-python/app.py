"""A Python HTTP server that serves the socket tend holds for it (standard library only).

    tend start examples/cluster-python/app.py -i 2 --port 8000
    curl localhost:8000
    tend reload app

tend passes each instance its socket as fd 3 with LISTEN_FDS=1 (systemd's protocol). Servers
that speak that protocol need no code at all: gunicorn picks LISTEN_FDS up by itself. Run one worker per
instance, let tend run the instances, and stop them with SIGTERM, gunicorn's graceful signal:

    tend start gunicorn --name api -i 2 --port 8000 --kill-signal SIGTERM -- -w 1 app:app
"""
import http.server
import os
import signal
import socket
import threading

if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
    raise SystemExit("app.py: start me with tend and --port, which passes the socket as fd 3")
sock = socket.socket(fileno=3)
instance = os.environ.get("NODE_APP_INSTANCE", "?")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from python instance {instance} (pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Worker", instance)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
server.socket = sock
server.daemon_threads = False
server.block_on_close = True  # on shutdown, finish the requests in flight


def stop(signum, frame):
    # On tend's kill_signal: stop accepting and finish what is in flight. The socket stays open
    # in tend, so connections still queued on it go to the next instance.
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
print(f"python instance {instance} serving on fd 3", flush=True)
server.serve_forever()
server.server_close()
