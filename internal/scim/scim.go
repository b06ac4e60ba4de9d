// Package scim is agentid's SCIM 2.0 service provider for owners and
// agents: the User resource of RFC 7643 §4.1 mapped onto owners (ADR
// 0023), the Agent resource of draft-wzdk-scim-agent-resource-00 mapped
// onto agents (ADR 0025), the filter subset of RFC 7644 §3.4.2.2 the
// provider answers, PATCH
// (RFC 7644 §3.5.2) decoding and application, the discovery documents of
// RFC 7643 §5–7, and the SCIM errors of RFC 7644 §3.12.
//
// It speaks no HTTP: the transport (internal/httpapi) hands it request
// bodies and query values and writes what it returns. Every change goes
// through identity.Service, so SCIM provisioning is audited exactly like
// the admin API.
package scim

// Schema and message URNs (RFC 7643 §8.7, RFC 7644 §3.4.2, §3.5.2, §3.12).
const (
	SchemaUser                  = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterpriseUser        = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaServiceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	MessageListResponse         = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	MessagePatchOp              = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	MessageError                = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// MediaType is the SCIM media type (RFC 7644 §8.1).
const MediaType = "application/scim+json"

// Limits of what the provider accepts and returns.
const (
	// MaxResults is the most resources one list answer holds
	// (ServiceProviderConfig filter.maxResults); a larger count is cut to
	// it (RFC 7644 §3.4.2.4).
	MaxResults = 200
	// DefaultCount is the page size when the client gives no count.
	DefaultCount = 100
	// MaxFilterLen bounds a filter expression, in bytes.
	MaxFilterLen = 4096
	// MaxOperations bounds the operations of one PATCH request.
	MaxOperations = 100
)
