package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	inboxv1 "github.com/caekit/caekit/proto/example/inbox/v1"
)

// loadResult is one closed-loop run: conc workers each calling back to back.
type loadResult struct {
	Concurrency int     `json:"concurrency"`
	Calls       int64   `json:"calls"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	// AllocsPerCall and BytesPerCall are process-wide runtime.MemStats
	// deltas divided by the calls: client, server and (Introspection) the
	// authorization server together, since all run in this process.
	AllocsPerCall float64 `json:"allocs_per_call"`
	BytesPerCall  float64 `json:"bytes_per_call"`
	// SliceRPS is the throughput of each slice of an interleaved run, in
	// the order the rounds ran: slice k of two cases ran next to each other
	// (pairedRatio).
	SliceRPS []float64 `json:"slice_rps,omitempty"`
}

// pairedRatio compares two cases of one interleaved run slice by slice:
// the median over the rounds of a's slice throughput over b's, with the
// quartiles and the number of pairs. Two slices of one round ran within a
// few hundred milliseconds of each other, so a burst of other work on the
// machine moves both, and the median ignores the rounds it hit one of them
// only; the aggregate ratio (total calls over total time) counts every
// such round in full.
func pairedRatio(a, b loadResult) (med, q1, q3 float64, n int) {
	n = min(len(a.SliceRPS), len(b.SliceRPS))
	if n == 0 {
		return 0, 0, 0, 0
	}
	r := make([]float64, 0, n)
	for k := range n {
		if b.SliceRPS[k] > 0 {
			r = append(r, a.SliceRPS[k]/b.SliceRPS[k])
		}
	}
	if len(r) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(r)
	at := func(q float64) float64 { return r[int(q*float64(len(r)-1)+0.5)] }
	return at(0.5), at(0.25), at(0.75), len(r)
}

func bearerContext(ctx context.Context, raw string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+raw)
}

// runUnary drives GetMessage with conc workers for warm (discarded), then
// for dur (measured). Worker w uses connection w mod numConns. Any failed
// call fails the run: a case that refuses calls must not look fast.
func runUnary(e *env, conc int, warm, dur time.Duration) (loadResult, error) {
	rs := runInterleaved([]*env{e}, conc, warm, dur, dur)
	return rs[0].result, rs[0].err
}

// interleaved accumulates one case's slices.
type interleaved struct {
	lats            [][]time.Duration
	elapsed         time.Duration
	sliceRPS        []float64
	mallocs, allocB uint64
	result          loadResult
	err             error
}

// runInterleaved measures every env at concurrency conc for total time
// each, in slices of slice: slice after slice, the cases take turns in a
// rotating order, so that whatever else runs on the machine weighs on all
// of them alike. Each case is warmed up for warm first.
func runInterleaved(envs []*env, conc int, warm, total, slice time.Duration) []interleaved {
	st := make([]interleaved, len(envs))
	for i, e := range envs {
		rate := 2000.0
		if warm > 0 {
			lats := make([][]time.Duration, conc)
			el, _, _, err := drive(e, conc, warm, lats)
			if err != nil {
				st[i].err = err
				continue
			}
			rate = max(rate, float64(countCalls(lats))/el.Seconds())
		}
		st[i].lats = make([][]time.Duration, conc)
		for w := range st[i].lats {
			st[i].lats[w] = make([]time.Duration, 0, int(rate*total.Seconds()*1.5/float64(conc))+1024)
		}
	}
	rounds := max(1, int(total/slice))
	runtime.GC()
	for k := range rounds {
		for j := range envs {
			i := (j + k) % len(envs)
			if st[i].err != nil {
				continue
			}
			before := countCalls(st[i].lats)
			el, m, b, err := drive(envs[i], conc, slice, st[i].lats)
			if err != nil {
				st[i].err = err
				continue
			}
			st[i].sliceRPS = append(st[i].sliceRPS, float64(countCalls(st[i].lats)-before)/el.Seconds())
			st[i].elapsed += el
			st[i].mallocs += m
			st[i].allocB += b
		}
	}
	for i := range st {
		s := &st[i]
		if s.err != nil {
			continue
		}
		all := slices.Concat(s.lats...)
		slices.Sort(all)
		n := int64(len(all))
		if n == 0 {
			s.err = fmt.Errorf("%s: no call completed", envs[i].spec.Name)
			continue
		}
		s.result = loadResult{
			Concurrency:   conc,
			Calls:         n,
			Seconds:       s.elapsed.Seconds(),
			RPS:           float64(n) / s.elapsed.Seconds(),
			P50us:         micros(percentile(all, 0.50)),
			P99us:         micros(percentile(all, 0.99)),
			AllocsPerCall: float64(s.mallocs) / float64(n),
			BytesPerCall:  float64(s.allocB) / float64(n),
			SliceRPS:      s.sliceRPS,
		}
		s.lats = nil
	}
	return st
}

// countCalls returns the number of latencies recorded across the workers.
func countCalls(lats [][]time.Duration) int {
	n := 0
	for _, l := range lats {
		n += len(l)
	}
	return n
}

// drive runs conc workers calling GetMessage back to back for dur (HTTP
// cases: GET /v1/messages/42 on a keep-alive connection per worker),
// appending each call's latency to lats[worker]. It returns the elapsed
// time and the process-wide allocations meanwhile.
func drive(e *env, conc int, dur time.Duration, lats [][]time.Duration) (time.Duration, uint64, uint64, error) {
	errs := make([]error, conc)
	ctx := bearerContext(context.Background(), e.token)
	req := &inboxv1.GetMessageRequest{Id: "42"}
	var wg sync.WaitGroup
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	begin := time.Now()
	deadline := begin.Add(dur)
	for w := range conc {
		call := func() error { return nil }
		if e.http != nil {
			hreq, err := e.http.newRequest(e.token)
			if err != nil {
				return 0, 0, 0, err
			}
			call = func() error { return e.http.get(hreq) }
		} else {
			cl := e.clients[w%len(e.clients)]
			call = func() error { _, err := cl.GetMessage(ctx, req); return err }
		}
		wg.Go(func() {
			lat := lats[w]
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := call(); err != nil {
					errs[w] = err
					break
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	runtime.ReadMemStats(&ms1)
	if err := errors.Join(errs...); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: call failed: %w", e.spec.Name, err)
	}
	return elapsed, ms1.Mallocs - ms0.Mallocs, ms1.TotalAlloc - ms0.TotalAlloc, nil
}

// streamResult is the per-message cost on server streams.
type streamResult struct {
	Streams      int     `json:"streams"`
	Messages     int64   `json:"messages"`
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	NsPerMsg     float64 `json:"ns_per_msg"`
	AllocsPerMsg float64 `json:"allocs_per_msg"`
}

// runStream opens streams WatchInbox streams whose server sends back to
// back (client: Upload streams whose client sends back to back), lets them
// run for warm, then counts the messages received (sent) in dur.
func runStream(e *env, streams int, warm, dur time.Duration, client bool) (streamResult, error) {
	ctx, cancel := context.WithCancel(bearerContext(context.Background(), e.token))
	counts := make([]atomic.Int64, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		cl := e.clients[i%len(e.clients)]
		if client {
			up, err := cl.Upload(ctx)
			if err != nil {
				cancel()
				wg.Wait()
				return streamResult{}, fmt.Errorf("%s: open client stream: %w", e.spec.Name, err)
			}
			wg.Go(func() {
				msg := &inboxv1.UploadRequest{Data: []byte(messageBody)}
				for {
					if err := up.Send(msg); err != nil {
						if ctx.Err() == nil {
							errs[i] = err
						}
						return
					}
					counts[i].Add(1)
				}
			})
			continue
		}
		st, err := cl.WatchInbox(ctx, &inboxv1.WatchInboxRequest{})
		if err != nil {
			cancel()
			wg.Wait()
			return streamResult{}, fmt.Errorf("%s: open stream: %w", e.spec.Name, err)
		}
		wg.Go(func() {
			for {
				if _, err := st.Recv(); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				counts[i].Add(1)
			}
		})
	}
	sum := func() int64 {
		var n int64
		for i := range counts {
			n += counts[i].Load()
		}
		return n
	}
	time.Sleep(warm)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	n0, t0 := sum(), time.Now()
	time.Sleep(dur)
	n1, elapsed := sum(), time.Since(t0)
	runtime.ReadMemStats(&ms1)
	cancel()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return streamResult{}, fmt.Errorf("%s: stream failed: %w", e.spec.Name, err)
	}
	n := n1 - n0
	if n <= 0 {
		return streamResult{}, fmt.Errorf("%s: no message received in %v", e.spec.Name, dur)
	}
	rate := float64(n) / elapsed.Seconds()
	return streamResult{
		Streams: streams, Messages: n, Seconds: elapsed.Seconds(), MsgsPerSec: rate, NsPerMsg: 1e9 / rate,
		AllocsPerMsg: float64(ms1.Mallocs-ms0.Mallocs) / float64(n),
	}, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
