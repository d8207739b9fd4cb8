// Package policy enforces location and authentication-context policies on
// gRPC calls, as check.Check values (package interceptor/check) for the
// caekit server interceptor.
//
// A Policy names IP locations (IPv4 and IPv6 CIDR ranges, each location with
// a name and a trusted flag) and has rules that, per method pattern, allow
// only some locations, block some, require the caller's IP to match the
// token's ipaddr claim (strict mode), or require an authentication context
// (acrs c1..c25). An Engine compiles a Policy into an immutable structure,
// swapped atomically on Update; its Checks plug into the interceptor:
//
//	p, err := policy.LoadFile("policy.yaml")
//	eng, err := policy.NewEngine(p, policy.WithClientID(apiAppID))
//	w, err := policy.Watch(ctx, "policy.yaml", eng) // hot reload until Close; ctx bounds the first load only
//	defer w.Close()
//	srv, err := interceptor.New(validator, interceptor.WithChecks(eng.Checks()...))
//
// The same Policy can be built in code as a struct literal and passed to
// NewEngine, which validates it exactly as a file is validated.
//
// # Which IP counts
//
// By default the gRPC peer address, and nothing else. With
// client_ip.trusted_proxies set, and only for calls whose peer is one of
// those proxies, the forwarding header (x-forwarded-for, or client_ip.header)
// is read and the right-most address in it that is not a trusted proxy is the
// caller. Forwarding headers from any other peer are ignored. See package
// clientip. If the address cannot be determined the call is denied, with a
// plain PermissionDenied: that includes a trusted proxy that sends no
// forwarding header, an empty one, or one that lists only trusted proxies
// (the proxy's own address is never taken for the caller's).
//
// # Rules
//
// Allow lists and auth_context come from the most specific rule; block lists
// accumulate from every matching rule. For each call the most specific rule
// is an exact "/pkg.Service/Method" pattern, else "/pkg.Service/*", else "*";
// a method matched by no rule is not restricted by the policy. Its
// allow_locations, allow_trusted, strict and auth_context apply, and those of
// broader rules do not. But a caller in any block_locations location of any
// matching rule — the exact rule, the service's "/pkg.Service/*" rule and
// the "*" rule — is refused, whatever any allow list says: a rule written to
// tighten one method (say, to require a step-up) never lifts a block that a
// broader rule sets. If allow_locations or allow_trusted is set the caller
// must be in one of those locations (or any trusted one); with strict the
// caller's IP must also equal the token's ipaddr claim; with auth_context the
// token's acrs must hold one of the listed ids.
//
// # Step-up dialects
//
// A rule chooses its step-up dialect by its fields. auth_context is
// Microsoft Entra's: the token's acrs claim must hold one of the ids, and a
// token without gets an insufficient_claims challenge (below) that only CAE
// clients (cp1) receive. acr_values and max_age are RFC 9470's, the
// standard OIDC claims every IdP issues: the token's acr (OIDC Core §2)
// must equal one of acr_values, and its auth_time must be at most max_age
// before the call (a token without auth_time fails). A token that falls
// short gets, whatever its capabilities, an Unauthenticated denial with
//
//	www-authenticate: Bearer error="insufficient_user_authentication", error_description="…", acr_values="urn:example:mfa", max_age="300"
//
// (RFC 9470 §3; reason REASON_AUTH_CONTEXT; the same values in the
// cae.v1.ClaimsChallenge and ErrorInfo details), and the caekit client asks
// its TokenSource for a token with those acr_values and max_age and retries
// once. A rule uses one dialect. A token issued in answer to the challenge
// that still falls short gets a plain PermissionDenied, as below. Since
// max_age depends on the time, StepUpCheck is not check.TimeIndependent:
// open streams run it on every message, and a stream's next message after
// its token's authentication became older than max_age ends the stream
// with the challenge.
//
// A location refusal is a claims challenge with reason REASON_LOCATION and
// claims {"access_token":{"nbf":{"essential":true,"value":"<unix time>"}}}:
// the client goes back to the identity provider (IdP), which re-evaluates its
// own conditional access from the address it sees, and either refuses or
// issues a new token. A missing auth context is a challenge with reason
// REASON_AUTH_CONTEXT, claims {"access_token":{"acrs":{"essential":true,"value":"c1"}}}
// and the parameter cc_type="authcontext" (plus client_id with WithClientID).
//
// # Avoiding challenge loops
//
// A challenge only helps if a new token can change the outcome. When the IdP
// and this service see the caller at different addresses — the IdP over IPv4
// and the service over IPv6, or a split-tunnel VPN — the IdP keeps issuing
// tokens that the service keeps refusing: Entra's documented IPv4/IPv6
// mismatch loop, in which every call costs a trip to the IdP. The engine
// turns such a challenge into a plain denial (codes.PermissionDenied, reason
// REASON_LOCATION, no claims, a message that says why) in two cases:
//
//  1. The token's ipaddr claim equals the caller's address as this service
//     sees it: the IdP issued the token seeing this very address, so asking
//     it again cannot change anything.
//  2. The service already challenged this caller (same subject, same rule,
//     same address) at time T, and the presented token is a different one,
//     issued at or after T (less a skew, default 10 minutes, because Entra
//     backdates iat by 5 minutes), and first seen within a short window
//     after T (WithChallengeAnswerWindow, default 2 minutes): the client has
//     been back to the IdP in answer to the challenge, and the new token
//     still fails. When tokens carry a session id (sid, else deviceid) the
//     new token must also be of a challenged token's session: a token of
//     another session or device of the same user is challenged instead.
//
// The nbf value of a challenge is T, the moment the mismatch was first seen,
// not the current time, so all challenges for one mismatch agree. The same
// token presented again gets the same answer as before (challenged again
// with the same T, or denied again); an older token never challenged is
// challenged too. A new failing token first seen after the window is no
// answer to the challenge (a proactive refresh, another device, a new
// login): it is challenged, and a new round starts at its T. For auth
// context the same memory applies: a token issued in answer to a step-up
// challenge that still lacks the context gets a plain denial telling the
// operator to check the IdP's auth context definition.
//
// As soon as a caller passes a rule, its memory for that rule is cleared,
// at every address: a completed step-up followed by a proactive refresh
// that asks only for the base claims, a second device of the same user, or
// a return to an address challenged before, each gets a challenge, never a
// lock-out. (The caekit client also keeps the step-up claims on its
// proactive refreshes for the scopes that needed them.) The price: a caller
// whose calls alternate between a passing and a failing address (a split
// tunnel) is challenged again after each pass; the client's own retry rules
// bound that to one IdP round trip per refused call. Clearing costs the
// allow path no lock while the memory is empty, and never allocates.
//
// The memory of challenges is bounded (WithChallengeMemory, default 10,000
// (rule, caller) pairs of up to 8 addresses each, kept for 1 hour), kept per
// process. With several replicas a caller may get one extra challenge per
// replica; since clients retry a challenged call once and return a second
// challenge to the caller, this never loops. A caller the IdP can never
// satisfy costs at most one IdP round trip per answer window, and one per
// proactive refresh of its token.
//
// # Policy file
//
// A policy file is YAML, or JSON (a JSON document is parsed as YAML, with
// the same line numbers). It is parsed with go.yaml.in/yaml/v3, the
// YAML organisation's maintained continuation of gopkg.in/yaml.v3: it has no
// dependencies, and its node API gives the line and column of every value,
// which the loader uses to report each problem at its place. Anchors and
// aliases are refused, so no "billion laughs" expansion is possible; files
// are limited to MaxFileSize bytes.
//
//	version: 1                     # optional; only 1 is accepted
//	client_ip:                     # optional
//	  trusted_proxies:             # CIDR ranges of proxies whose header is believed
//	    - 10.0.0.0/8
//	    - fd12:3456:789a::/48
//	  header: x-forwarded-for      # lowercase metadata key; default x-forwarded-for
//	  max_hops: 16                 # header entries examined, 1..64; default 16
//	locations:
//	  - name: hq                   # required, unique, printable, ≤ 256 bytes
//	    trusted: true              # optional, default false
//	    ranges:                    # required, ≥ 1; IPv4 /8../32, IPv6 /32../128
//	      - 203.0.113.0/24
//	      - 2001:db8:1::/48
//	  - name: embargoed
//	    ranges: [198.51.100.0/24]
//	rules:
//	  - methods: ["/inbox.v1.InboxService/*"]   # "/pkg.Service/Method", "/pkg.Service/*" or "*"
//	    allow_locations: [hq]      # names of locations defined above
//	    allow_trusted: false       # also admit every trusted location
//	    block_locations: [embargoed]
//	    strict: false              # caller IP must equal the token's ipaddr
//	    auth_context: []           # any one of c1..c25 required in acrs (Entra's dialect)
//	  - methods: ["/inbox.v1.InboxService/DeleteMessage"]
//	    allow_trusted: true
//	    auth_context: [c1]
//	  - methods: ["/inbox.v1.InboxService/ExportAll"]
//	    acr_values: [urn:example:mfa]  # RFC 9470: the token's acr must be one of these
//	    max_age: 300               # RFC 9470: auth_time at most 300 s (or "5m") ago
//	  - methods: ["*"]
//	    block_locations: [embargoed]
//
// Every problem is reported with the file, line, column and field, e.g.
//
//	policy.yaml:14:7: rules[0].allow_locations[0]: unknown location "hq2" (defined: "hq", "embargoed")
//
// The checks: unknown fields and fields given twice; wrong types (a string
// where a list is expected, an unquoted number as a name); invalid CIDR
// ranges, bare addresses without a prefix length, host bits set (with the
// masked range suggested), IPv4 prefixes broader than /8 and IPv6 broader
// than /32 (MinIPv4Bits, MinIPv6Bits: broader ranges span many networks
// and are almost surely mistakes), IPv6 prefixes overlapping the
// IPv4-mapped space; duplicate or empty location names, locations without
// ranges; bad method patterns (wildcards other than a whole method or "*")
// and patterns used by two rules; unknown locations in rules, a location both
// allowed and blocked; auth context ids outside c1..c25; acr values that
// are empty, repeated or hold spaces, quotes or control characters, more
// than challenge.MaxACRValues of them; max_age zero, negative, not whole
// seconds or over challenge.MaxMaxAge; a rule mixing auth_context with
// acr_values or max_age; rules that restrict nothing; more than MaxLocations locations, MaxRanges ranges or MaxRules
// rules; more than one YAML document; an empty file; aliases.
//
// # Hot reload
//
// Watch polls the file (every 2 s by default) and swaps in each new valid
// version. A version that does not parse or validate is logged and reported
// to the WithOnReload callback, and the last good policy stays in force.
//
// Every successful Update (a Watcher's reloads included) is announced to the
// OnChange subscribers; an interceptor.Server whose checks come from the
// Engine subscribes itself, and re-checks every open stream at once, idle
// ones included, so a reload that blocks a caller also ends its open streams.
package policy
