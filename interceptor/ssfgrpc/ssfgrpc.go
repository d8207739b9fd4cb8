// Package ssfgrpc serves cae.v1.SecurityEventService: the gRPC way in for
// Security Event Tokens, on top of the same validation and store path as SSF
// push and poll (package revocation/ssf/receiver).
//
// The service is protected by caekit's own server interceptors plus a role
// check: register RequireRole with interceptor.WithChecks so that only
// callers whose access token carries the publishing role may publish.
package ssfgrpc

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	caev1 "github.com/caekit/caekit/proto/cae/v1"
	"github.com/caekit/caekit/revocation/ssf/receiver"
)

// DefaultRole is the roles claim value RequireRole asks for by default.
const DefaultRole = "SecurityEvents.Publish"

// ServicePrefix is the full-method prefix of cae.v1.SecurityEventService.
const ServicePrefix = "/cae.v1.SecurityEventService/"

// Server implements caev1.SecurityEventServiceServer over an receiver.Receiver.
type Server struct {
	caev1.UnimplementedSecurityEventServiceServer
	r *receiver.Receiver
}

// New returns a Server that validates and stores SETs with r.
func New(r *receiver.Receiver) *Server { return &Server{r: r} }

// Publish validates one SET and stores its event, returning only once it is
// stored. A redelivered SET is answered like the first, with Duplicate set.
//
// Errors: InvalidArgument with a google.rpc.ErrorInfo whose reason is the RFC
// 8935 code (invalid_request, invalid_key, invalid_issuer, invalid_audience,
// invalid_state) for a refused SET, including invalid_key for a kid absent
// from the transmitter's JWKS right after a successful refresh; Unavailable,
// to be retried, when the store failed or when the SET's signing key could
// not be looked up (receiver.ErrKeysUnavailable: the JWKS could not be fetched,
// or its refresh for an unknown kid is rate-limited).
func (s *Server) Publish(ctx context.Context, req *caev1.PublishRequest) (*caev1.PublishResponse, error) {
	res, err := s.r.ReceiveVia(ctx, "grpc", []byte(req.GetSet()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &caev1.PublishResponse{Jti: res.JTI, Duplicate: res.Duplicate, EventType: res.EventType}, nil
}

func toStatus(err error) error {
	var se *receiver.Error
	if errors.As(err, &se) {
		st := status.New(codes.InvalidArgument, se.Description)
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{
			Reason:   se.Code,
			Domain:   challenge.ErrorInfoDomain,
			Metadata: map[string]string{"description": se.Description},
		}); derr == nil {
			st = d
		}
		return st.Err()
	}
	if errors.Is(err, receiver.ErrKeysUnavailable) {
		return status.Error(codes.Unavailable, "the signing key of the SET could not be obtained; publish it again later")
	}
	if errors.Is(err, receiver.ErrStore) {
		return status.Error(codes.Unavailable, "the event could not be stored; publish it again")
	}
	return status.Error(codes.Internal, "the SET could not be processed")
}

// RequireRole returns a Check that, on the methods of
// cae.v1.SecurityEventService only, requires the token's roles claim (a
// string or an array of strings, in Claims.Raw["roles"]) to contain role
// (DefaultRole if empty). Other methods pass untouched. A caller without the
// role is denied with PermissionDenied.
func RequireRole(role string) check.Check {
	if role == "" {
		role = DefaultRole
	}
	desc := "publishing security events requires the role " + role
	return check.CheckFunc(func(_ context.Context, req *check.Request) *check.Denial {
		if !strings.HasPrefix(req.FullMethod, ServicePrefix) {
			return nil
		}
		if req.Claims != nil && hasRole(req.Claims.Raw["roles"], role) {
			return nil
		}
		return &check.Denial{Code: codes.PermissionDenied, Reason: caev1.Reason_REASON_POLICY, Description: desc}
	})
}

func hasRole(v any, role string) bool {
	switch v := v.(type) {
	case string:
		return v == role
	case []any:
		for _, r := range v {
			if s, ok := r.(string); ok && s == role {
				return true
			}
		}
	case []string:
		for _, s := range v {
			if s == role {
				return true
			}
		}
	}
	return false
}
