// Package receiver is caekit's Shared Signals Framework receiver: it turns Security
// Event Tokens (SETs, RFC 8417) from an SSF transmitter into revocation.Events
// and stores them.
//
// A Receiver validates a SET (signature against the transmitter's JWKS with an
// algorithm allow-list that never admits "none", typ secevent+jwt, iss, aud,
// iat window, no exp, no top-level sub, exactly one event, jti), maps its
// subject onto revocation Keys with a SubjectMapper, checks that those Keys
// name only issuers, tenants and e-mail domains this transmitter may speak
// for, maps its event type onto a revocation.Type (CAEP, RISC and SSF event types are built in), Puts one
// revocation.Event per Key and only then acknowledges it. A redelivered SET
// (same iss and jti) is answered exactly like the first delivery. A SET that
// could not be stored is never acknowledged and never remembered as done, so
// the transmitter delivers it again.
//
// # Keys (RFC 8935 answers)
//
// A SET whose kid is not among the keys the receiver holds triggers a
// refresh of the transmitter's JWKS, rate-limited (3 at
// once, then one per Limits.UnknownKIDRefresh, default 5 s) so
// that made-up kids cannot hammer the transmitter. Then:
//
//   - the refresh succeeded and the kid is still absent: the SET is refused
//     with 400 {"err":"invalid_key"} (gRPC InvalidArgument, poll setErrs),
//     and so is a kid absent from static keys (WithPublicKey, WithJWKS,
//     WithKeySet), which are all there is;
//   - the refresh could not happen (rate-limited, or the JWKS endpoint
//     failed): ErrKeysUnavailable, push 503 with Retry-After, gRPC
//     Unavailable, poll neither acknowledged nor reported, so the SET is
//     delivered again and not remembered.
//
// The trade-off: a transmitter that signs with a new key before it
// publishes that key in its JWKS gets those SETs refused for good (RFC 8935
// §2.3 invalid_key, which it must not retry), and their events are lost
// unless it re-sends them. Publishing a key before signing with it is the
// usual rotation practice (publish, let caches refresh, then sign);
// answering "try again" instead would let any forged kid buy an unbounded
// retry loop. A known key with a bad
// signature, or an unacceptable key (a disallowed alg, a key type or curve
// that does not fit the alg, an RSA key under Limits.MinRSAKeyBits), is
// refused with invalid_key too.
//
// # Strict parsing
//
// SETs are decoded as strictly as access tokens, by the same code
// (internal/jose, shared with interceptor/token): canonical unpadded
// base64url, UTF-8 JSON without duplicate member names at any depth
// (compared after unescaping) and nested at most 32 deep, and a key whose
// type matches the algorithm. Each violation is refused with
// invalid_request (invalid_key for the key) and a description saying what
// was wrong.
//
// # Delivery
//
// Three ways in share the same validation:
//
//   - push (RFC 8935): Receiver is an http.Handler;
//   - poll (RFC 8936): Poller long-polls a transmitter and acknowledges only
//     what was validated and stored;
//   - gRPC: package interceptor/ssfgrpc serves cae.v1.SecurityEventService.
//
// stream.Client (package revocation/ssf/stream) manages streams at the transmitter (configuration, create, read,
// update, delete, status, verification).
//
// # Event mapping
//
// Events are applied at the event's own time: CAEP event_timestamp, else the
// SET's toe, else its iat. The built-in mapping (see ssf.Classify):
//
//	CAEP session-revoked                       TypeSessionRevoked
//	CAEP credential-change, password (any)     TypePasswordChanged
//	CAEP credential-change, create of an MFA
//	     method (fido2-platform, fido2-roaming,
//	     fido-u2f, phone-voice, phone-sms, app)  TypeMFAEnabled
//	CAEP assurance-level-change, decrease      TypeAssuranceDecreased
//	CAEP device-compliance-change, not-compliant TypeDeviceNotCompliant
//	CAEP token-claims-change                   TypeTokenClaimsChanged
//	CAEP risk-level-change to HIGH             TypeUserRiskHigh, or
//	     TypeServicePrincipalRiskHigh when principal names a workload
//	RISC account-disabled                      TypeUserDisabled
//	RISC account-purged                        TypeUserDeleted
//	RISC account-credential-change-required,
//	     credential-compromise                 TypeCredentialCompromised
//	RISC sessions-revoked (deprecated)         TypeRefreshTokensRevoked
//
// x509, pin and verifiable-credential are not treated as MFA methods: a PIN
// unlocks a local authenticator and a certificate or credential is usually a
// primary credential, so creating one does not by itself mean the user's
// sign-in got stronger. Every other known event (session-established,
// session-presented, account-enabled, credential-change revoke/update/delete of
// a non-password credential, lower risk levels, SSF verification and
// stream-updated, the other RISC events) is recorded: acknowledged, logged and
// reported to the Observer, with no revocation. Unknown event types are
// acknowledged and counted as OutcomeUnknownType, never rejected.
//
// # Subjects
//
// Every RFC 9493 format (account, email, iss_sub, opaque, phone_number, did,
// uri, aliases) and SSF's complex, jwt_id, ip-addresses and saml_assertion_id
// are parsed. So is what deployed transmitters send:
//
//   - the legacy in-event "subject" with "subject_type" and no top-level
//     sub_id (Google RISC, Keycloak): "iss-sub" and "iss_sub" are iss_sub,
//     "id_token_claims" is iss_sub (or email when it has only an email);
//   - SET bodies with only aud, events, iat, iss and jti (Okta);
//   - a complex subject without "format":"complex", recognised by its
//     members (user, session, tenant, application, device, org_unit,
//     group). As in any complex subject, an absent member is unconstrained;
//     the DefaultMapper maps the narrowest member present and maps a
//     subject with no user, session, device or application (a tenant,
//     org_unit or group alone) to nothing: never to "every user";
//   - typ "secevent+jwt" or "application/secevent+jwt", in any case;
//   - pushes without an Authorization header, with
//     WithInsecurePushWithoutAuthorization (the Google mode; off by
//     default), checked by signature and aud alone;
//   - the legacy RISC stream API's delivery ({"delivery_method", "url"}),
//     read always and written with stream.WithLegacyRISCAPI.
//
// ssf.DefaultMapper documents how each maps onto token claims. An event whose
// subject maps onto no Key is acknowledged (it is valid; we just cannot
// enforce it), logged at WARN with its jti and counted as OutcomeUnmapped.
//
// # Issuers, tenants and e-mail domains
//
// A receiver stores only keys its transmitter may name, so that in a
// deployment with several IdPs or tenants one transmitter (or a leak of its
// signing key) cannot revoke another's users. The Keys a SET maps onto (by
// any SubjectMapper) are checked:
//
//   - iss+sub, session, token (jti), client and device keys must be scoped by
//     the SET's own iss, the DefaultMapper's TokenIssuer, or an issuer given
//     with WithSubjectIssuers;
//   - object keys (tid+oid) must name the DefaultMapper's OpaqueTenant or a
//     tenant given with WithSubjectTenants;
//   - e-mail keys (email and account subjects) must be of a domain given with
//     WithEmailDomains: none by default, since an e-mail address is not
//     scoped by an issuer.
//
// A SET with any other key is refused as a whole with invalid_request, its
// description naming the offending issuer, tenant or domain; it is logged,
// counted as rejected, and nothing of it is stored.
//
// # Observability
//
// Every processed SET is counted in the OpenTelemetry counter
// caekit.ssf.events (WithMeterProvider; default the global provider) by
// caekit.ssf.event_type (a short name such as "caep.session-revoked", or
// "_OTHER"), caekit.outcome (Outcome.String()), caekit.ssf.delivery and, for
// rejected SETs, caekit.ssf.error_code; failed JWKS refreshes are counted in
// caekit.ssf.jwks.refresh.failures. The Observer (WithObserver) still sees
// every Observation. Log lines carry delivery, iss, jti, event_type, the SET's
// hash prefix ("set") and the outcome; never the SET itself.
package receiver
