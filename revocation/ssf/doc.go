// Package ssf is the vocabulary of the OpenID Shared Signals Framework as
// caekit reads it: the Security Event Token (SET, RFC 8417), its subject
// identifiers (RFC 9493 and SSF's), the CAEP, RISC and SSF event types,
// and how each event is classified into a revocation.Type; also the
// transmitter's metadata (ssf-configuration).
//
// It is what a reader needs to understand a SET. Receiving SETs (push,
// poll, validation, storing) is package revocation/ssf/receiver; managing
// streams at a transmitter is package revocation/ssf/stream; test
// transmitters are package revocation/ssf/ssftest.
//
// # Event classification
//
// Classify maps an event onto a revocation.Type; the built-in mapping:
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
// sign-in got stronger. Every other known event type is known but does not
// revoke; unknown event types are not Known.
//
// # Subjects
//
// ParseSubject reads every RFC 9493 format (account, email, iss_sub, opaque,
// phone_number, did, uri, aliases) and SSF's complex, jwt_id, ip-addresses
// and saml_assertion_id, plus the legacy in-event "subject" with
// "subject_type" (Google RISC, Keycloak) and a complex subject without
// "format". A SubjectMapper maps a subject onto revocation Keys;
// DefaultMapper documents how each format maps onto token claims.
package ssf
