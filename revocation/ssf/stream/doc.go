// Package stream manages event streams at an SSF transmitter (OpenID Shared
// Signals Framework §8): read the transmitter's configuration, create,
// read, update, replace and delete a stream, read its status, and request
// a verification event. The SETs the stream delivers are received with
// package revocation/ssf/receiver.
//
// Every URL the Client fetches, and every redirect it follows, must be
// https (plain http only on loopback, or with WithInsecureHTTP), and the
// bearer token stays on the issuer's origin unless the configuration is
// supplied with WithConfiguration.
package stream
