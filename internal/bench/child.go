package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Hello is the one line (JSON) a child server prints on stdout once it
// listens: its base URL and, for agentid, an admin token.
type Hello struct {
	URL string `json:"url"`
	// NodeAPI is the node API's host:port, when the child serves it.
	NodeAPI    string `json:"node_api,omitempty"`
	AdminToken string `json:"admin_token,omitempty"` //nolint:gosec // a throwaway token of a temporary server, sent to the parent only
}

// WriteHello writes h as one line of JSON.
func WriteHello(w io.Writer, h Hello) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("bench: encode hello: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("bench: write hello: %w", err)
	}
	return nil
}

// Timeouts of a child's life cycle.
const (
	helloTimeout = 60 * time.Second // migrations and key generation included
	stopTimeout  = 20 * time.Second // graceful shutdown, final audit checkpoint
)

// child is a server process the bench started.
type child struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
	err    error // of Wait, once done is closed
	hello  Hello
	log    *os.File
}

// helloWriter captures the first line written to it and discards the rest.
type helloWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line chan string
	sent bool
}

func (h *helloWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sent {
		return len(p), nil
	}
	if h.buf.Len() < 64<<10 {
		h.buf.Write(p)
	}
	if i := bytes.IndexByte(h.buf.Bytes(), '\n'); i >= 0 {
		h.sent = true
		h.line <- string(h.buf.Bytes()[:i])
	}
	return len(p), nil
}

// startChild starts exe with args, its stderr going to logPath, and waits
// for its Hello. Cancelling ctx or calling stop interrupts it (SIGINT) and
// kills it after stopTimeout.
func startChild(ctx context.Context, name, exe string, args []string, logPath string) (*child, error) {
	c, hw, err := spawn(ctx, name, exe, args, logPath)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case line := <-hw.line:
		return c.greeted(line)
	case <-c.done:
		// Wait returns after stdout is copied: a hello, if any, is there.
		select {
		case line := <-hw.line:
			return c.greeted(line)
		default:
		}
		_ = c.stop()
		return nil, fmt.Errorf("%w: %s exited before it listened: %w%s", ErrChild, name, c.err, c.logTail())
	case <-t.C:
		_ = c.stop()
		return nil, fmt.Errorf("%w: %s did not listen within %s%s", ErrChild, name, helloTimeout, c.logTail())
	case <-ctx.Done():
		_ = c.stop()
		return nil, fmt.Errorf("bench: start %s: %w", name, ctx.Err())
	}
}

// startDaemon starts exe with args like startChild, for a program that
// prints no Hello: it polls ready every 20 ms until it succeeds.
func startDaemon(ctx context.Context, name, exe string, args []string, logPath string, ready func() error) (*child, error) {
	c, _, err := spawn(ctx, name, exe, args, logPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(helloTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rerr := ready()
		if rerr == nil {
			return c, nil
		}
		select {
		case <-c.done:
			_ = c.stop()
			return nil, fmt.Errorf("%w: %s exited before it was ready: %w%s", ErrChild, name, c.err, c.logTail())
		case <-ctx.Done():
			_ = c.stop()
			return nil, fmt.Errorf("bench: start %s: %w", name, ctx.Err())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = c.stop()
			return nil, fmt.Errorf("%w: %s not ready within %s (%w)%s", ErrChild, name, helloTimeout, rerr, c.logTail())
		}
	}
}

// spawn starts exe with args, its stdout captured for a Hello and its
// stderr going to logPath.
func spawn(ctx context.Context, name, exe string, args []string, logPath string) (*child, *helloWriter, error) {
	logf, err := os.Create(logPath) //nolint:gosec // a file in the bench's own temporary directory
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %s log: %w", name, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(cctx, exe, args...) //nolint:gosec // this binary, re-executed with fixed arguments
	hw := &helloWriter{line: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = hw, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopTimeout
	c := &child{name: name, cmd: cmd, cancel: cancel, done: make(chan struct{}), log: logf}
	if err := cmd.Start(); err != nil {
		cancel()
		_ = logf.Close()
		return nil, nil, fmt.Errorf("%w: start %s: %w", ErrChild, name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, hw, nil
}

// greeted parses the child's hello line.
func (c *child) greeted(line string) (*child, error) {
	if err := json.Unmarshal([]byte(line), &c.hello); err != nil || c.hello.URL == "" {
		_ = c.stop()
		return nil, fmt.Errorf("%w: %s printed %q, not a hello line%s", ErrChild, c.name, line, c.logTail())
	}
	return c, nil
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// cpu is the child's CPU time so far.
func (c *child) cpu() (time.Duration, error) { return ProcessCPU(c.pid()) }

// stop interrupts the child and waits until it exits (killing it after
// stopTimeout). An exit after the interrupt is not an error; a crash is.
func (c *child) stop() error {
	c.cancel()
	<-c.done
	_ = c.log.Close()
	// After the interrupt, a clean exit makes Wait report the cancellation.
	if c.err != nil && !errors.Is(c.err, context.Canceled) {
		return fmt.Errorf("%w: %s: %w%s", ErrChild, c.name, c.err, c.logTail())
	}
	return nil
}

// logTail returns the end of the child's stderr, for error messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.log.Name())
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	const keep = 2 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return "; its stderr ends:\n" + strings.TrimSpace(string(b))
}
