package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/caekit/caekit/interceptor"
	"github.com/caekit/caekit/interceptor/token"
	"github.com/caekit/caekit/policy"
	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
	"github.com/caekit/caekit/revocation"
	"github.com/caekit/caekit/revocation/redisstore"
)

// kind is the server-side authorisation a case runs.
type kind int

const (
	kindBare          kind = iota // no interceptors
	kindNaive                     // go-grpc-middleware auth + golang-jwt, every call
	kindIntrospection             // RFC 7662 introspection, every call
	kindCAENoCache                // caekit, verified-token cache off
	kindCAECache                  // caekit, verified-token cache on
	kindCAERedis                  // caekit, cache on, Redis store, 3 replicas
)

// spec describes one benchmark case.
type spec struct {
	Name    string
	Slug    string // benchmark sub-test name
	Kind    kind
	Alg     string
	Entries int // revocation entries preloaded (caekit cases)
	Ranges  int // location ranges in the policy (caekit cases)
	// Writable gives a caekit case a revocation store of its own, which
	// the benchmark may write to (stream-cut measurements).
	Writable bool
	// Observed installs the observability a deployed server runs (see
	// observability): the OTel SDK with a Prometheus exporter, gRPC server
	// metrics and a JSON access log to io.Discard; caekit records into the
	// same SDK and logs through the same logger.
	Observed bool
}

// observedBareName is the baseline of the observed caekit case.
const observedBareName = "Bare + SDK/log"

// Defaults of the main table.
const (
	defaultEntries = 10_000
	defaultRanges  = 10
	numConns       = 3 // client connections per case (one per replica in the Redis case)
)

// mainSpecs are the rows of the main table, in order.
func mainSpecs() []spec {
	return []spec{
		{Name: "Bare", Slug: "bare", Kind: kindBare, Alg: algRS256},
		{Name: "Naive (golang-jwt)", Slug: "naive", Kind: kindNaive, Alg: algRS256},
		{Name: "Introspection", Slug: "introspection", Kind: kindIntrospection, Alg: algRS256},
		{Name: "caekit, cache off", Slug: "caekit-nocache", Kind: kindCAENoCache, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges},
		{Name: "caekit, cache on", Slug: "caekit-cache", Kind: kindCAECache, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges},
		{Name: "caekit, Redis ×3", Slug: "caekit-redis3", Kind: kindCAERedis, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges},
		{Name: observedBareName, Slug: "bare-observed", Kind: kindBare, Alg: algRS256, Observed: true},
		{Name: "caekit, cache on + SDK/log", Slug: "caekit-cache-observed", Kind: kindCAECache, Alg: algRS256, Entries: defaultEntries, Ranges: defaultRanges, Observed: true},
	}
}

var discard = slog.New(slog.DiscardHandler)

// fixtures are built once per run and shared by the cases: keys, preloaded
// revocation stores, the Redis server.
type fixtures struct {
	mu      sync.Mutex
	signers map[string]*signer
	stores  map[int]*revocation.Memory
	redis   *redisServer
	redisN  int
}

func newFixtures() *fixtures {
	return &fixtures{signers: map[string]*signer{}, stores: map[int]*revocation.Memory{}}
}

func (fx *fixtures) close() {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if fx.redis != nil {
		fx.redis.stop()
		fx.redis = nil
	}
}

func (fx *fixtures) signer(alg string) (*signer, error) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if s, ok := fx.signers[alg]; ok {
		return s, nil
	}
	s, err := newSigner(alg)
	if err != nil {
		return nil, err
	}
	fx.signers[alg] = s
	return s, nil
}

// revocationEvent is the i-th preloaded event: about other users, sessions
// and tokens than the benchmark's caller, so that every call is allowed and
// every look-up searches a populated map.
func revocationEvent(i int, now time.Time) revocation.Event {
	n := strconv.Itoa(i)
	ev := revocation.Event{ID: "set-" + n, Type: revocation.TypeSessionRevoked, Time: now}
	switch i % 3 {
	case 0:
		ev.Type, ev.Subject = revocation.TypeUserDisabled, revocation.ObjectKey(tenantID, "oid-revoked-"+n)
	case 1:
		ev.Subject = revocation.SessionKey(issuer, "sid-revoked-"+n)
	default:
		ev.Type, ev.Subject = revocation.TypeCredentialCompromised, revocation.TokenKey(issuer, "jti-revoked-"+n)
	}
	return ev
}

// memory returns a shared Memory preloaded with n events. It must not be
// written to: cases that write make their own with newMemory.
func (fx *fixtures) memory(n int) (*revocation.Memory, error) {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if m, ok := fx.stores[n]; ok {
		return m, nil
	}
	m, err := newMemory(n)
	if err != nil {
		return nil, err
	}
	fx.stores[n] = m
	return m, nil
}

func newMemory(n int) (*revocation.Memory, error) {
	m, err := revocation.NewMemory()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for i := range n {
		if err := m.Put(context.Background(), revocationEvent(i, now)); err != nil {
			return nil, fmt.Errorf("preload revocation store: %w", err)
		}
	}
	return m, nil
}

// benchPolicy returns a location policy of exactly ranges ranges (at least
// 3): the loopback "office" the benchmark client calls from, an embargoed
// range, and the rest spread over branch sites, 500 ranges each. Every
// InboxService call must come from an allowed location and not from the
// embargoed one.
func benchPolicy(ranges int) (*policy.Policy, error) {
	if ranges < 3 || ranges > 60_000 {
		return nil, fmt.Errorf("ranges %d outside [3, 60000]", ranges)
	}
	p := &policy.Policy{
		Locations: []policy.Location{
			{Name: "office", Trusted: true, Ranges: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			{Name: "embargoed", Ranges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		},
	}
	allow := []string{"office"}
	for i := range ranges - 2 {
		if i%500 == 0 {
			name := "site-" + strconv.Itoa(i/500)
			p.Locations = append(p.Locations, policy.Location{Name: name})
			allow = append(allow, name)
		}
		l := &p.Locations[len(p.Locations)-1]
		l.Ranges = append(l.Ranges, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	p.Rules = []policy.Rule{{
		Methods:        []string{"/" + inboxv1.InboxService_ServiceDesc.ServiceName + "/*"},
		AllowLocations: allow,
		BlockLocations: []string{"embargoed"},
	}}
	return p, nil
}

// newCAE builds a caekit interceptor Server over store.
func newCAE(s *signer, sp spec, store revocation.Store, extra ...interceptor.Option) (*interceptor.Server, *token.Validator, error) {
	cache := token.DefaultCacheSize
	if sp.Kind == kindCAENoCache {
		cache = 0
	}
	v, err := token.NewValidator(context.Background(),
		token.WithIssuer(issuer), token.WithAudience(audience),
		token.WithStaticKey(keyID, s.public()), token.WithCacheSize(cache),
		token.WithLogger(discard))
	if err != nil {
		return nil, nil, err
	}
	p, err := benchPolicy(max(sp.Ranges, 3))
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	eng, err := policy.NewEngine(p, policy.WithLogger(discard))
	if err != nil {
		_ = v.Close()
		return nil, nil, fmt.Errorf("policy engine: %w", err)
	}
	opts := append([]interceptor.Option{interceptor.WithStore(store), interceptor.WithChecks(eng.Checks()...),
		interceptor.WithLogger(discard), interceptor.WithAuthorizationURI("https://idp.bench.example/authorize")}, extra...)
	srv, err := interceptor.New(v, opts...)
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	return srv, v, nil
}

// env is one running case: servers on 127.0.0.1, client connections, and
// what the server side needs to be torn down.
type env struct {
	spec    spec
	signer  *signer
	token   string
	as      *authServer // introspection only
	obs     *observability
	clients []inboxv1.InboxServiceClient
	// stores are the revocation stores the servers consult, one per replica
	// (caekit cases); events Put into stores[0] reach every replica.
	stores []revocation.Store
	cae    []*interceptor.Server
	// http, for the HTTP cases, replaces clients: drive sends GET requests.
	http    *httpTarget
	closers []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// serve starts a gRPC server with opts on 127.0.0.1 and returns its address.
func (e *env) serve(opts []grpc.ServerOption) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	s := grpc.NewServer(opts...)
	inboxv1.RegisterInboxServiceServer(s, service{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	e.closers = append(e.closers, func() { s.Stop(); <-done })
	return lis.Addr().String(), nil
}

// mintToken returns a token for user n, session sid, registered with the
// introspection endpoint when there is one.
func (e *env) mintToken(n int, sid string) (string, error) {
	c := tokenClaims(n, sid, time.Now())
	raw, err := e.signer.sign(c)
	if err != nil {
		return "", err
	}
	if e.as != nil {
		e.as.register(raw, c)
	}
	return raw, nil
}

// newEnv starts the servers of sp and connects numConns clients.
func newEnv(fx *fixtures, sp spec) (_ *env, err error) {
	s, err := fx.signer(sp.Alg)
	if err != nil {
		return nil, err
	}
	e := &env{spec: sp, signer: s}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	var addrs []string
	var obs *observability
	if sp.Observed {
		if obs, err = newObservability(); err != nil {
			return nil, err
		}
		e.closers = append(e.closers, obs.close)
		e.obs = obs
	}
	add := func(opts []grpc.ServerOption) error {
		if obs != nil {
			opts = obs.wrap(opts)
		}
		a, err := e.serve(opts)
		addrs = append(addrs, a)
		return err
	}
	switch sp.Kind {
	case kindBare:
		err = add(nil)
	case kindNaive:
		f := naiveAuth(sp.Alg, s.public())
		err = add([]grpc.ServerOption{
			grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(f)),
			grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(f)),
		})
	case kindIntrospection:
		as, aerr := startAuthServer()
		if aerr != nil {
			return nil, aerr
		}
		e.as = as
		e.closers = append(e.closers, as.close)
		in := newIntrospector(as.url)
		e.closers = append(e.closers, in.close)
		err = add([]grpc.ServerOption{
			grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(in.authFunc)),
			grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(in.authFunc)),
		})
	case kindCAENoCache, kindCAECache:
		var m *revocation.Memory
		var merr error
		if sp.Writable {
			m, merr = newMemory(sp.Entries)
		} else {
			m, merr = fx.memory(sp.Entries)
		}
		if merr != nil {
			return nil, merr
		}
		err = e.addCAE(sp, m, add)
	case kindCAERedis:
		stores, rerr := fx.redisReplicas(sp.Entries)
		if rerr != nil {
			return nil, rerr
		}
		for _, st := range stores {
			e.closers = append(e.closers, func() { _ = st.Close() })
		}
		for _, st := range stores {
			if err = e.addCAE(sp, st, add); err != nil {
				break
			}
		}
	default:
		err = fmt.Errorf("unknown case kind %d", sp.Kind)
	}
	if err != nil {
		return nil, err
	}
	for i := range numConns {
		cc, cerr := grpc.NewClient(addrs[i%len(addrs)], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if cerr != nil {
			return nil, fmt.Errorf("dial: %w", cerr)
		}
		e.closers = append(e.closers, func() { _ = cc.Close() })
		e.clients = append(e.clients, inboxv1.NewInboxServiceClient(cc))
	}
	if e.token, err = e.mintToken(1, "sid-bench-1"); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) addCAE(sp spec, store revocation.Store, add func([]grpc.ServerOption) error) error {
	var extra []interceptor.Option
	if e.obs != nil {
		extra = append(extra, interceptor.WithMeterProvider(e.obs.mp), interceptor.WithLogger(e.obs.log))
	}
	srv, v, err := newCAE(e.signer, sp, store, extra...)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, func() { _ = v.Close() }, func() { _ = srv.Close() })
	e.cae = append(e.cae, srv)
	e.stores = append(e.stores, store)
	return add(srv.ServerOptions())
}

// redisReplicas returns three Redis-backed stores (replicas) sharing one
// fresh key prefix, with n events preloaded through the first and mirrored
// by all three. The caller closes them.
func (fx *fixtures) redisReplicas(n int) (_ []*redisstore.Store, err error) {
	fx.mu.Lock()
	if fx.redis == nil {
		r, err := startRedis()
		if err != nil {
			fx.mu.Unlock()
			return nil, err
		}
		fx.redis = r
	}
	fx.redisN++
	url, prefix := fx.redis.url(), "bench"+strconv.Itoa(fx.redisN)+":"
	fx.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stores []*redisstore.Store
	defer func() {
		if err != nil {
			for _, s := range stores {
				_ = s.Close()
			}
		}
	}()
	for range 3 {
		s, err := redisstore.NewFromURL(ctx, url, redisstore.WithPrefix(prefix), redisstore.WithLogger(discard))
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		stores = append(stores, s)
	}
	if err := preload(ctx, stores[0], n); err != nil {
		return nil, err
	}
	for _, s := range stores {
		for s.Len() < n {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("replica mirrors %d of %d events: %w", s.Len(), n, ctx.Err())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return stores, nil
}

// preload puts n events into s with 32 concurrent writers.
func preload(ctx context.Context, s revocation.Store, n int) error {
	now := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				if err := s.Put(ctx, revocationEvent(i, now)); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	return nil
}
