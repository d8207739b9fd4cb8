package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reload reports one attempt to reload a watched policy file.
type Reload struct {
	// Path is the watched file.
	Path string
	// Hash is a hex prefix of the file's SHA-256 ("" if it could not be read).
	Hash string
	// Err is nil when the new policy is in force; otherwise it says what was
	// wrong, and the last good policy stays in force.
	Err error
}

type watchOptions struct {
	interval time.Duration
	onReload func(Reload)
	logger   *slog.Logger
}

// WatchOption configures a Watcher.
type WatchOption func(*watchOptions)

// WithInterval sets how often the file is polled (default 2 s).
func WithInterval(d time.Duration) WatchOption { return func(o *watchOptions) { o.interval = d } }

// WithOnReload sets a callback run after each reload attempt that found a
// changed file, successful or not. It runs on the watcher's goroutine; keep it
// short.
func WithOnReload(f func(Reload)) WatchOption { return func(o *watchOptions) { o.onReload = f } }

// WithWatchLogger sets the logger (default slog.Default()).
func WithWatchLogger(l *slog.Logger) WatchOption {
	return func(o *watchOptions) {
		if l != nil {
			o.logger = l
		}
	}
}

// Watcher keeps an Engine in step with a policy file. It polls the file's
// size, modification time and identity on a ticker, and re-reads and hashes
// it when any of them changes (or when the modification time is too recent to
// be trusted), so that in-place writes and editors that atomically rename a
// new file over the old one are both seen. A new version that fails to parse
// or validate is rejected and logged, and the last good policy stays in
// force. It runs until Close.
type Watcher struct {
	path   string
	engine *Engine
	o      watchOptions
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	// owned by the goroutine
	stat    os.FileInfo
	hash    [sha256.Size]byte // of the version in force
	seen    [sha256.Size]byte // of the last version read
	lastErr string
}

// Watch loads the file at path into e now, failing if that does not work,
// then watches it for changes until Close is called.
//
// ctx bounds this initialisation only, as for every constructor in the kit
// (NewValidator, redisstore.New): Watch fails if ctx is already done, and
// the watcher's lifetime is not tied to ctx; its values (for logging) are
// kept. Invalid arguments are all reported at once, joined with
// errors.Join.
func Watch(ctx context.Context, path string, e *Engine, opts ...WatchOption) (*Watcher, error) {
	o := watchOptions{interval: 2 * time.Second, logger: slog.Default()}
	var errs []error
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("policy: watch option %d is nil", i))
			continue
		}
		opt(&o)
	}
	if o.interval <= 0 {
		errs = append(errs, fmt.Errorf("policy: watch interval %v is not positive", o.interval))
	}
	if e == nil {
		errs = append(errs, errors.New("policy: Watch needs an Engine"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: watch %s: %w", path, err)
	}
	w := &Watcher{path: path, engine: e, o: o, done: make(chan struct{})}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := e.Update(p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w.stat, w.hash = st, sha256.Sum256(data)
	w.seen = w.hash
	var life context.Context
	life, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go w.run(life)
	return w, nil
}

// Close stops the watcher and waits for its goroutine to end. It is safe to
// call more than once.
func (w *Watcher) Close() error {
	w.once.Do(w.cancel)
	<-w.done
	return nil
}

// runExited is called as a watcher's goroutine returns, right before done
// is closed; tests replace it to check that Close waits for the goroutine.
var runExited = func() {}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	defer runExited() // tests observe that Close waited for this
	t := time.NewTicker(w.o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll(ctx)
		}
	}
}

// racyWindow: a file modified this recently may change again without its
// modification time changing (coarse timestamps), so it is re-hashed.
const racyWindow = 2 * time.Second

func (w *Watcher) poll(ctx context.Context) {
	st, err := os.Stat(w.path)
	if err != nil {
		w.report(ctx, Reload{Path: w.path, Err: fmt.Errorf("policy: %w (keeping the last good policy)", err)})
		return
	}
	if w.stat != nil && os.SameFile(w.stat, st) && st.Size() == w.stat.Size() &&
		st.ModTime().Equal(w.stat.ModTime()) && time.Since(st.ModTime()) > racyWindow {
		return
	}
	data, err := readFile(w.path)
	if err != nil {
		w.report(ctx, Reload{Path: w.path, Err: err})
		return
	}
	sum := sha256.Sum256(data)
	w.stat = st
	if sum == w.seen {
		if sum == w.hash && w.lastErr != "" { // back to the version in force
			w.lastErr = ""
			w.report(ctx, Reload{Path: w.path, Hash: hex.EncodeToString(sum[:6])})
		}
		return
	}
	w.seen = sum
	r := Reload{Path: w.path, Hash: hex.EncodeToString(sum[:6])}
	p, err := Parse(w.path, data)
	if err == nil {
		err = w.engine.Update(p)
	}
	if err != nil {
		r.Err = err
		w.report(ctx, r)
		return
	}
	w.hash = sum
	w.lastErr = ""
	w.report(ctx, r)
}

func (w *Watcher) report(ctx context.Context, r Reload) {
	if r.Err != nil {
		if r.Err.Error() == w.lastErr {
			return // already reported this very problem
		}
		w.lastErr = r.Err.Error()
		w.o.logger.LogAttrs(ctx, slog.LevelError, "policy: reload rejected; the last good policy stays in force",
			slog.String("path", r.Path), slog.String("hash", r.Hash), slog.String("error", r.Err.Error()))
	} else {
		w.o.logger.LogAttrs(ctx, slog.LevelInfo, "policy: reloaded", slog.String("path", r.Path), slog.String("hash", r.Hash))
	}
	if w.o.onReload != nil {
		w.o.onReload(r)
	}
}
