package interceptor

import (
	"github.com/caekit/caekit/interceptor/challenge"
	"github.com/caekit/caekit/interceptor/check"
	"github.com/caekit/caekit/interceptor/token"
)

// Claims are the validated claims of the caller's access token.
type Claims = token.Claims

// The check contract lives in package check, which both this package and
// the packages that provide checks (policy) import. The names below keep
// code written against earlier versions compiling; see CHANGELOG.md.

// Request is check.Request.
//
// Deprecated: use check.Request.
type Request = check.Request

// Check is check.Check.
//
// Deprecated: use check.Check.
type Check = check.Check

// CheckFunc is check.CheckFunc.
//
// Deprecated: use check.CheckFunc.
type CheckFunc = check.CheckFunc

// Denial is check.Denial.
//
// Deprecated: use check.Denial.
type Denial = check.Denial

// MetadataUser is check.MetadataUser.
//
// Deprecated: use check.MetadataUser.
type MetadataUser = check.MetadataUser

// ChangeNotifier is check.ChangeNotifier.
//
// Deprecated: use check.ChangeNotifier.
type ChangeNotifier = check.ChangeNotifier

// TimeIndependent is check.TimeIndependent.
//
// Deprecated: use check.TimeIndependent.
type TimeIndependent = check.TimeIndependent

// Param is challenge.Param, the type of check.Denial's Params.
//
// Deprecated: use challenge.Param.
type Param = challenge.Param
