package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caekit/caekit/revocation"
)

// Bounds on the strings of one event. They bound the memory one entry takes
// in Redis and in every replica's mirror; Put refuses longer values and the
// decoder refuses them from Redis.
const (
	// MaxScopeLen bounds Subject.Scope (a tenant id or an issuer URL).
	MaxScopeLen = 512
	// MaxSubjectIDLen bounds Subject.ID (an object id, sub, sid, e-mail, jti...).
	MaxSubjectIDLen = 512
	// MaxEventIDLen bounds Event.ID (the jti of the SET that carried the event).
	MaxEventIDLen = 256
)

// maxValueLen bounds a whole encoded value: header plus the three strings.
const maxValueLen = 128 + MaxScopeLen + MaxSubjectIDLen + MaxEventIDLen

// The encoding (version 1) of an event, used both as the value of its
// subject's key and as the Pub/Sub message:
//
//	1,<unix nanos, 20 digits>,<type>,<kind>,<len scope>,<len id>,<len event id>,<scope><id><event id>
//
// The time is zero-padded to a fixed width at a fixed offset so the Lua
// script compares two events by a plain string comparison of bytes 3..22,
// exactly (Lua numbers are doubles and cannot hold nanoseconds). The strings
// are length-prefixed, so they may contain any bytes, commas included.
const (
	encVersion  = "1,"
	timeDigits  = 20
	timeEnd     = len(encVersion) + timeDigits // byte offset after the time
	headerParts = 7
)

var errBadValue = errors.New("redisstore: malformed event encoding")

// validate checks ev as revocation.Event.Validate does, plus the length
// bounds and the time range the encoding can represent.
func validate(ev revocation.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	switch {
	case len(ev.Subject.Scope) > MaxScopeLen:
		return fmt.Errorf("redisstore: subject scope is %d bytes, longer than the limit of %d", len(ev.Subject.Scope), MaxScopeLen)
	case len(ev.Subject.ID) > MaxSubjectIDLen:
		return fmt.Errorf("redisstore: subject id is %d bytes, longer than the limit of %d", len(ev.Subject.ID), MaxSubjectIDLen)
	case len(ev.ID) > MaxEventIDLen:
		return fmt.Errorf("redisstore: event id is %d bytes, longer than the limit of %d", len(ev.ID), MaxEventIDLen)
	}
	if ev.Time.Before(minTime) || ev.Time.After(maxTime) {
		return fmt.Errorf("redisstore: event time %s is outside the supported range %s to %s",
			ev.Time.UTC().Format(time.RFC3339), minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	}
	return nil
}

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// encode renders ev in the version 1 encoding. ev must have passed validate.
func encode(ev revocation.Event) string {
	var b strings.Builder
	b.Grow(64 + len(ev.Subject.Scope) + len(ev.Subject.ID) + len(ev.ID))
	b.WriteString(encVersion)
	ns := strconv.FormatInt(ev.Time.UnixNano(), 10)
	for i := len(ns); i < timeDigits; i++ {
		b.WriteByte('0')
	}
	b.WriteString(ns)
	b.WriteByte(',')
	b.WriteString(ev.Type.String())
	b.WriteByte(',')
	b.WriteString(ev.Subject.Kind.String())
	for _, n := range [...]int{len(ev.Subject.Scope), len(ev.Subject.ID), len(ev.ID)} {
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte(',')
	b.WriteString(ev.Subject.Scope)
	b.WriteString(ev.Subject.ID)
	b.WriteString(ev.ID)
	return b.String()
}

// decode parses the version 1 encoding. The subject id and the event id of
// the returned event share one fresh copy of their bytes (one allocation per
// mirrored entry), and the scope is interned (see intern): the event keeps
// neither s nor its header alive. Sharing s itself, as decode did first,
// kept the ~60-byte header and the scope in every entry
// (BenchmarkMirrorBytes: 445 bytes per entry at 1M before, with the whole
// Event stored in the mirror).
func decode(s string) (revocation.Event, error) {
	var ev revocation.Event
	if len(s) > maxValueLen {
		return ev, fmt.Errorf("%w: %d bytes, longer than the limit of %d", errBadValue, len(s), maxValueLen)
	}
	if !strings.HasPrefix(s, encVersion) {
		return ev, fmt.Errorf("%w: unknown version (want prefix %q)", errBadValue, encVersion)
	}
	rest := s[len(encVersion):]
	var parts [headerParts - 1]string
	for i := range parts {
		j := strings.IndexByte(rest, ',')
		if j < 0 {
			return ev, fmt.Errorf("%w: header has %d fields, want %d", errBadValue, i+1, headerParts)
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	if len(parts[0]) != timeDigits {
		return ev, fmt.Errorf("%w: time field is %d digits, want %d", errBadValue, len(parts[0]), timeDigits)
	}
	// All digits (ParseInt alone would take a sign): with the fixed width
	// that makes the field canonical, the zero-padded form encode writes.
	if !allDigits(parts[0]) {
		return ev, fmt.Errorf("%w: bad time %q (want %d decimal digits)", errBadValue, parts[0], timeDigits)
	}
	ns, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || ns < 0 {
		return ev, fmt.Errorf("%w: bad time %q (out of range)", errBadValue, parts[0])
	}
	if ev.Type, err = revocation.ParseType(parts[1]); err != nil {
		return ev, fmt.Errorf("%w: %w", errBadValue, err)
	}
	if ev.Subject.Kind, err = revocation.ParseKind(parts[2]); err != nil {
		return ev, fmt.Errorf("%w: %w", errBadValue, err)
	}
	var n [3]int
	limits := [3]int{MaxScopeLen, MaxSubjectIDLen, MaxEventIDLen}
	total := 0
	for i := range n {
		var ok bool
		if n[i], ok = parseLen(parts[3+i], limits[i]); !ok {
			return ev, fmt.Errorf("%w: bad length %q (want a decimal number 0 to %d without sign or leading zeros)",
				errBadValue, parts[3+i], limits[i])
		}
		total += n[i]
	}
	if total != len(rest) {
		return ev, fmt.Errorf("%w: lengths add up to %d, payload is %d bytes", errBadValue, total, len(rest))
	}
	ev.Subject.Scope = intern(rest[:n[0]])
	ids := strings.Clone(rest[n[0]:])
	ev.Subject.ID = ids[:n[1]]
	ev.ID = ids[n[1]:]
	ev.Time = time.Unix(0, ns).UTC()
	if err := ev.Validate(); err != nil {
		return revocation.Event{}, fmt.Errorf("%w: %w", errBadValue, err)
	}
	return ev, nil
}

// allDigits reports whether s is non-empty and all ASCII decimal digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseLen parses a length field in the canonical form encode writes, the
// form strconv.Itoa gives: decimal digits, no sign, no leading zeros ("0"
// alone for zero). It refuses values above limit, so it cannot overflow.
func parseLen(s string, limit int) (int, bool) {
	if !allDigits(s) || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

// subjectKey returns the Redis key of k under prefix:
//
//	<prefix>rev:<kind>:<len scope>:<scope>:<id>
//
// The length prefix keeps keys unambiguous whatever bytes scope and id hold.
func subjectKey(prefix string, k revocation.Key) string {
	var b strings.Builder
	kind := k.Kind.String()
	b.Grow(len(prefix) + len(keySpace) + len(kind) + 8 + len(k.Scope) + len(k.ID))
	b.WriteString(prefix)
	b.WriteString(keySpace)
	b.WriteString(kind)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(len(k.Scope)))
	b.WriteByte(':')
	b.WriteString(k.Scope)
	b.WriteByte(':')
	b.WriteString(k.ID)
	return b.String()
}

const (
	keySpace    = "rev:"
	channelName = "events"
	// changeLogName is the change log's key under the prefix. It is outside
	// keySpace, so SCAN never reads it as a subject.
	changeLogName = "changes"
	// logField holds an encoded event in a change-log entry; markField
	// marks a position (resync).
	logField  = "e"
	markField = "m"
)

// scanPattern returns the SCAN MATCH pattern for every subject key under
// prefix, with the prefix's glob characters escaped.
func scanPattern(prefix string) string {
	var b strings.Builder
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(keySpace)
	b.WriteByte('*')
	return b.String()
}
