// Package redistest starts a real redis-server for tests.
//
// Start runs the redis-server binary found on PATH on a free loopback port,
// in a temporary directory, and stops it when the test ends. The server can be
// killed and restarted on the same port (with persistence, its data survives
// the restart). Proxy is a loopback TCP proxy that a test can cut and restore,
// to disconnect one client from Redis while others stay connected.
// StartSentinel runs a primary with replicas under redis-sentinel, and
// StartClusterWithReplicas a Cluster whose masters have replicas, for
// failover tests.
//
// When redis-server is not installed the test is skipped with a message that
// says how to install it, unless the environment variable CAEKIT_REQUIRE_REDIS
// is "1", in which case the test fails.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caekit/caekit/internal/testkit"
)

// RequireEnv is the environment variable that turns a missing redis-server
// from a skip into a failure (set it to "1" in CI).
const RequireEnv = "CAEKIT_REQUIRE_REDIS"

// Binary is the name of the server binary looked up on PATH.
const Binary = "redis-server"

const startTimeout = 10 * time.Second

// Option configures Start.
type Option func(*config)

type config struct {
	persist     bool
	cluster     bool
	nodeTimeout time.Duration // cluster-node-timeout; 0: 2 s
	replicaOf   string        // host:port of the primary, for a replica
	sentinel    []string      // sentinel.conf lines: run as a Sentinel
	binary      string        // path of the binary; "": redis-server
}

// ReplicaOf starts the server as a replica of the primary at addr, with
// diskless synchronisation so that it catches up at once.
func ReplicaOf(addr string) Option { return func(c *config) { c.replicaOf = addr } }

// WithPersistence turns on the append-only file with fsync on every write, so
// that every acknowledged write survives Kill and Restart.
func WithPersistence() Option { return func(c *config) { c.persist = true } }

// Server is a running (or stopped) redis-server owned by one test.
type Server struct {
	t    testing.TB
	cfg  config
	path string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
	out  *testkit.LogBuffer
}

// Path returns the path of redis-server, or skips t (fails it when
// CAEKIT_REQUIRE_REDIS=1) when the binary is not installed.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(Binary)
	if err != nil {
		msg := "redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) to run the Redis tests"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, RequireEnv)
		}
		t.Skip(msg)
	}
	return p
}

// Start starts redis-server on a free 127.0.0.1 port and registers its
// shutdown with t.Cleanup. It returns once the server answers PING.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, path: Path(t), dir: t.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.binary != "" {
		s.path = s.cfg.binary
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: start: %v", err)
	}
	t.Cleanup(func() { s.stop(syscall.SIGKILL) })
	return s
}

// Addr returns host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a redis:// URL for database 0 of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Output returns what the server has logged so far (up to 1 MiB), for
// diagnostics.
func (s *Server) Output() string {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.String()
}

// Kill stops the server abruptly with SIGKILL, as a crash would, and waits
// for it to exit. With WithPersistence every acknowledged write survives.
func (s *Server) Kill() {
	s.t.Helper()
	s.stop(syscall.SIGKILL)
}

// Freeze stops the server process with SIGSTOP: its connections stay open
// but it answers nothing, as a hung host would, until Thaw.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a server stopped by Freeze (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("redistest: %v to a server that is not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Restart starts the server again on the same port and directory. It fails
// the test if the server is still running.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("redistest: Restart while the server is running; call Kill first")
	}
	var err error
	deadline := time.Now().Add(startTimeout)
	for {
		if err = s.start(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
	if err != nil {
		s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
	}
}

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "",
		"--logfile", "",
		"--databases", "16",
	}
	if s.cfg.cluster {
		timeout := s.cfg.nodeTimeout
		if timeout <= 0 {
			timeout = 2 * time.Second
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
	}
	// Any server may become a primary: replicas then synchronise at once.
	args = append(args, "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
	if host, port, ok := strings.Cut(s.cfg.replicaOf, ":"); ok {
		args = append(args, "--replicaof", host, port)
	}
	if s.cfg.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.cfg.sentinel != nil {
		// Sentinel rewrites its configuration file, so it needs one.
		conf := filepath.Join(s.dir, "sentinel.conf")
		lines := append([]string{
			"port " + strconv.Itoa(s.port), "bind 127.0.0.1", "dir " + s.dir, "daemonize no", `logfile ""`,
		}, s.cfg.sentinel...)
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		args = []string{conf, "--sentinel"}
	}
	out := &testkit.LogBuffer{Limit: 1 << 20} // keep start-up diagnostics, drop the rest
	cmd := exec.Command(s.path, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", s.path, err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	if err := waitPing(s.Addr(), exit); err != nil {
		_ = cmd.Process.Kill()
		<-exit
		return fmt.Errorf("%w; server output:\n%s", err, out.String())
	}
	s.mu.Lock()
	s.cmd, s.exit, s.out = cmd, exit, out
	s.mu.Unlock()
	return nil
}

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen server must see the signal
	select {
	case <-exit:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-exit
	}
}

// waitPing polls addr with PING until it answers +PONG, the process exits or
// the start timeout passes.
func waitPing(addr string, exit <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return errors.New("redis-server exited during start-up")
		default:
		}
		if last = ping(addr); last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer PING within %v: %w", addr, startTimeout, last)
}

func ping(addr string) error {
	reply, err := Command(addr, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("unexpected PING reply %q", reply)
	}
	return nil
}

// Command sends one inline command (no quoting) to addr on a new connection
// and returns a simple-string, integer or bulk-string reply. An error reply
// is returned as an error.
func Command(addr, cmd string) (string, error) { return Commands(addr, cmd) }

// Commands sends inline commands, in order, on one new connection to addr
// and returns the last one's reply (see Command); it fails on the first
// error reply.
func Commands(addr string, cmds ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	var reply string
	for _, cmd := range cmds {
		if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
			return "", err
		}
		if reply, err = readReply(r); err != nil {
			return "", err
		}
	}
	return reply, nil
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}

// WaitReplicas waits until n replicas of the primary at addr acknowledge a
// write (SET then WAIT on one connection), so that a test starts with its
// replicas streaming, not merely connected. On a Cluster master it writes a
// key of a slot the master owns. It fails t after the start timeout.
func WaitReplicas(t testing.TB, addr string, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d replica(s) of %s to acknowledge a write", n, addr), func() (bool, string) {
		for i := 0; i < 256; i++ { // a key of one of this master's slots
			got, err := Commands(addr, fmt.Sprintf("SET redistest:probe:%d 1", i), "WAIT "+strconv.Itoa(n)+" 200")
			if err != nil && strings.HasPrefix(err.Error(), "MOVED") {
				continue
			}
			k, _ := strconv.Atoi(got)
			return err == nil && k >= n, fmt.Sprintf("%q %v", got, err)
		}
		return false, "no key of this master's slots found"
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
