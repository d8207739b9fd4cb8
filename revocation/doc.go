// Package revocation is caekit's model of critical events and the store that
// the server interceptors consult on every call.
//
// An Event says that something happened to a subject at a time: a user was
// disabled, a password was reset, a session was revoked. A token is revoked
// when an event for any of its subjects has an event time at or after the
// token's effective issue time, in whole seconds (Event.RevokesToken): its
// iat, or its nbf when that is later, trusted at most NotBeforeTrust ahead
// of iat. A revocation challenge asks for nbf = Event.NotBefore, the second
// after the event, which is exactly what the rule accepts. Events are applied by their own time, never by arrival order,
// so an old event that arrives late does not lock out a fresh sign-in.
//
// A Store keeps, per subject Key, the latest event. Look-up is O(1) and does
// not allocate. Entries expire once no token they could affect can still be
// valid: after the maximum token lifetime plus leeway.
//
// Memory is the embedded in-memory Store, the default. Other stores (Redis,
// in revocation/redisstore) keep a Memory as their local mirror, so the call
// path never leaves the process. The SSF receiver (revocation/ssf/receiver) turns
// Security Event Tokens into Events and Puts them; revocation/logout does the
// same for OpenID Connect Back-Channel Logout tokens and Global Token
// Revocation requests.
package revocation
