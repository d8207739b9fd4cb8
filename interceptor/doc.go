// Package interceptor brings Continuous Access Evaluation to gRPC servers,
// and holds the transport-neutral decision core (Server.Admit) that the
// net/http (caehttp) and connect-go (caeconnect) front doors share.
//
// A Server's interceptors authenticate every call with the bearer token in
// the "authorization" metadata ("Bearer <jwt>", scheme case-insensitive,
// exactly one value), verify it locally with a Validator (*token.Validator,
// with its verified-token cache), then run the checks in order: the built-in
// revocation check against a revocation.Store, then those added with
// WithChecks. The first denial wins. Allowed calls reach the handler with the
// token's claims in the context (ClaimsFromContext).
//
//	v, _ := token.NewValidator(ctx, token.WithIssuer(iss), token.WithAudience(aud), token.WithDiscovery(iss))
//	cae, _ := interceptor.New(v,
//		interceptor.WithStore(store),
//		interceptor.WithAuthorizationURI("https://login.microsoftonline.com/<tenant>/oauth2/authorize"),
//		interceptor.WithExempt(interceptor.HealthAndReflection()))
//	defer cae.Close()
//	srv := grpc.NewServer(cae.ServerOptions()...)
//
// # Denials
//
// A denied call ends with codes.Unauthenticated (or the check.Denial's code) and
// carries the challenge three times:
//
//   - a cae.v1.ClaimsChallenge status detail,
//   - a google.rpc.ErrorInfo status detail (reason such as "PASSWORD_CHANGED",
//     domain "caekit.dev", metadata "error", "claims", "authorization_uri", ...),
//   - the response metadata "www-authenticate", in Microsoft Entra's exact form.
//
// For example:
//
//	Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNjA0MTA2NjUxIn19fQ=="
//
// www-authenticate is sent as TRAILER metadata, for every call shape and also
// when a stream is cut mid-flight after its headers went out. A grpc-go client
// reads it with the grpc.Trailer call option (unary) or ClientStream.Trailer
// (streams, after Recv returned the error). It is not in the header metadata:
// a denial before any message is a gRPC "trailers-only" response, for which
// grpc-go's grpc.Header / ClientStream.Header return nothing. (Proxies that
// map gRPC to HTTP, such as grpc-web or Envoy's transcoder, turn trailers-only
// metadata into HTTP headers, so HTTP clients see a real WWW-Authenticate.)
//
// Claims challenges (error="insufficient_claims" with claims) go only to
// clients whose token declares the CAE capability (xms_cc contains "cp1",
// case-insensitively; see WithCapability and WithChallengeAll). Other clients
// get error="invalid_token" with an error_description and no claims. Both are
// revoked alike: the capability changes the form of the answer, never the
// decision.
//
// A revoked token (an event in the store for one of its subjects, in or after
// the second of its effective issue time; see revocation.Event.RevokesToken)
// gets the reason of the event type and the claims
// {"access_token":{"nbf":{"essential":true,"value":"<event time + 1>"}}}:
// the first second whose tokens the event does not revoke, so that a token
// that satisfies the challenge literally is accepted. A
// missing or invalid token gets TOKEN_INVALID (TOKEN_EXPIRED when expired) and
// a description of what was wrong; the token itself never appears in a
// response or a log line, only its hash prefix. While the store reports itself
// unhealthy every call fails closed with codes.Unavailable and reason
// STATE_UNAVAILABLE (no challenge: a new token would not help).
//
// # Streams
//
// Streams are checked when they open and then watched: the Server subscribes
// once to the store and indexes open streams by subject, so an event ends
// exactly the streams it revokes, within microseconds, even while the handler
// is blocked in Recv or Send. Checks also run again on each message received
// or sent, periodically with WithStreamRecheckInterval, and a stream ends when
// its token expires (reason TOKEN_EXPIRED, a timer). On a message, the
// revocation look-ups and the checks declaring check.TimeIndependent (the policy
// engine's) run only if an event, a check.ChangeNotifier change, RecheckStreams or
// the periodic re-check happened since they last passed; the store's health
// and other checks run on every message. See StreamServerInterceptor for how
// the handler is run.
//
// # Observability
//
// Metrics go through the OpenTelemetry metric API to WithMeterProvider's
// provider (default: the global one). caekit.server.decisions counts the
// decision on every unary call and stream open by rpc.method, caekit.outcome
// (allow, deny) and, for denials, caekit.reason (an observable counter: calls
// add to atomic counters read at collection); caekit.server.check.duration
// times the token validation and checks (seconds) by caekit.outcome and, for
// denials, caekit.reason (no rpc.method); caekit.server.stream.cuts
// counts streams ended mid-flight; caekit.server.streams.active counts open
// streams; caekit.revocation.store.entries, .staleness and .healthy report the
// store (entries and staleness only when the store has Len() int and
// Staleness() time.Duration methods). Allowed calls record without building
// attribute sets or allocating; methods past MaxMetricMethods are
// reported as "_OTHER".
//
// WithLogger's logger gets one line per denial, with the token's hash prefix
// ("token"), never the token. When a go-grpc-middleware v2 logging interceptor
// runs before this one, every call's caekit.subject, caekit.tenant,
// caekit.decision and caekit.reason are added to the fields it logs, also for
// denials and for streams cut mid-flight (see WithoutLoggingFields and
// WithInjectLoggingFields). WithAuditHook receives an AuditRecord for every
// denial.
package interceptor
