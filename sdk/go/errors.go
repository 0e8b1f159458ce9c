package mgpass

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed mgpass call: the gRPC code and the stable reason of its google.rpc.ErrorInfo
// detail (USER_NOT_FOUND, PERMISSION_DENIED, ...; see docs/errors.md). Branch on Reason, not on
// the message. status.FromError still works on it.
type Error struct {
	Code     codes.Code
	Reason   string
	Message  string
	Metadata map[string]string
	status   *status.Status
}

func (e *Error) Error() string { return fmt.Sprintf("mgpass: %s %s: %s", e.Code, e.Reason, e.Message) }

// GRPCStatus lets grpc's status package see the original status.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// AsError turns a gRPC error into *Error (errors that carry no gRPC status are returned as is).
func AsError(err error) error {
	var typed *Error
	if err == nil || errors.As(err, &typed) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			out.Reason, out.Metadata = info.GetReason(), info.GetMetadata()
			break
		}
	}
	return out
}

// ReasonOf is the ErrorInfo reason of err ("" when it has none).
func ReasonOf(err error) string {
	var typed *Error
	if errors.As(AsError(err), &typed) {
		return typed.Reason
	}
	return ""
}
