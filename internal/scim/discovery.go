package scim

// The discovery documents (RFC 7643 §5–7, RFC 7644 §4). They say what the
// provider does, no more: a client that reads them knows that PATCH,
// filters and ETags work and bulk, sorting and password changes do not,
// and which User attributes are kept.

// ListResponse is a list answer (RFC 7644 §3.4.2).
type ListResponse[T any] struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []T      `json:"Resources"`
}

// NewList returns the ListResponse of one page of resources.
func NewList[T any](resources []T, total, startIndex int) ListResponse[T] {
	if resources == nil {
		resources = []T{}
	}
	return ListResponse[T]{Schemas: []string{MessageListResponse}, TotalResults: total,
		StartIndex: max(startIndex, 1), ItemsPerPage: len(resources), Resources: resources}
}

// DocMeta is the meta attribute of a discovery document.
type DocMeta struct {
	ResourceType string `json:"resourceType"`
	Location     string `json:"location"`
}

type supported struct {
	Supported bool `json:"supported"`
}

type bulkConfig struct {
	Supported      bool `json:"supported"`
	MaxOperations  int  `json:"maxOperations"`
	MaxPayloadSize int  `json:"maxPayloadSize"`
}

type filterConfig struct {
	Supported  bool `json:"supported"`
	MaxResults int  `json:"maxResults"`
}

// AuthenticationScheme is one entry of authenticationSchemes.
type AuthenticationScheme struct {
	Type             string `json:"type"`
	Name             string `json:"name"`
	Description      string `json:"description"`
	SpecURI          string `json:"specUri,omitempty"`
	DocumentationURI string `json:"documentationUri,omitempty"`
	Primary          bool   `json:"primary"`
}

// ServiceProviderConfig is the document of RFC 7643 §5.
type ServiceProviderConfig struct {
	Schemas               []string               `json:"schemas"`
	DocumentationURI      string                 `json:"documentationUri,omitempty"`
	Patch                 supported              `json:"patch"`
	Bulk                  bulkConfig             `json:"bulk"`
	Filter                filterConfig           `json:"filter"`
	ChangePassword        supported              `json:"changePassword"`
	Sort                  supported              `json:"sort"`
	ETag                  supported              `json:"etag"`
	AuthenticationSchemes []AuthenticationScheme `json:"authenticationSchemes"`
	// AgentExtension advertises the Agent resource type as
	// draft-abbey-scim-agent-extension-00 ("Core Schema Extensions:
	// ServiceProviderConfig") says a provider serving agents must.
	AgentExtension agentExtension `json:"agentExtension"`
	Meta           DocMeta        `json:"meta"`
}

type agentExtension struct {
	Supported                    bool `json:"supported"`
	AgentsSupported              bool `json:"agentsSupported"`
	AgenticApplicationsSupported bool `json:"agenticApplicationsSupported"`
}

// Config returns the ServiceProviderConfig; base is the absolute URL of
// the SCIM root.
func Config(base string) ServiceProviderConfig {
	return ServiceProviderConfig{
		Schemas:        []string{SchemaServiceProviderConfig},
		Patch:          supported{true},
		Bulk:           bulkConfig{},
		Filter:         filterConfig{Supported: true, MaxResults: MaxResults},
		ChangePassword: supported{false},
		Sort:           supported{false},
		ETag:           supported{true},
		AuthenticationSchemes: []AuthenticationScheme{{
			Type: "oauthbearertoken", Name: "OAuth Bearer Token",
			Description: "An agentid admin token of role admin, sent as a bearer token (RFC 6750)",
			SpecURI:     "https://www.rfc-editor.org/rfc/rfc6750", Primary: true,
		}},
		AgentExtension: agentExtension{Supported: true, AgentsSupported: true},
		Meta:           DocMeta{ResourceType: "ServiceProviderConfig", Location: base + "/ServiceProviderConfig"},
	}
}

// ResourceType is the document of RFC 7643 §6.
type ResourceType struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description"`
	Schema      string   `json:"schema"`
	Meta        DocMeta  `json:"meta"`
}

// UserResourceType returns the User resource type.
func UserResourceType(base string) ResourceType {
	return ResourceType{
		Schemas: []string{SchemaResourceType}, ID: "User", Name: "User", Endpoint: "/Users",
		Description: "An owner of agents: a person accountable for them (ADR 0023)", Schema: SchemaUser,
		Meta: DocMeta{ResourceType: "ResourceType", Location: base + "/ResourceTypes/User"},
	}
}

// Attribute is an attribute definition of a schema (RFC 7643 §7).
type Attribute struct {
	Name            string      `json:"name"`
	Type            string      `json:"type"`
	SubAttributes   []Attribute `json:"subAttributes,omitempty"`
	MultiValued     bool        `json:"multiValued"`
	Description     string      `json:"description"`
	Required        bool        `json:"required"`
	CanonicalValues []string    `json:"canonicalValues,omitempty"`
	ReferenceTypes  []string    `json:"referenceTypes,omitempty"`
	CaseExact       bool        `json:"caseExact"`
	Mutability      string      `json:"mutability"`
	Returned        string      `json:"returned"`
	Uniqueness      string      `json:"uniqueness"`
}

// Schema is a schema document (RFC 7643 §7).
type Schema struct {
	Schemas     []string    `json:"schemas"`
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
	Meta        DocMeta     `json:"meta"`
}

func attr(name, typ, desc string) Attribute {
	return Attribute{Name: name, Type: typ, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

// UserSchema returns the User schema as the provider keeps it: the
// attributes of RFC 7643 §4.1 it stores (the common attributes id,
// externalId and meta are not listed, RFC 7643 §3.1). name.givenName and
// name.familyName are writeOnly: they make the displayName of a User
// created or replaced without one, and are not kept.
func UserSchema(base string) Schema {
	userName := attr("userName", "string", "Unique identifier for the User, as the identity provider names them; unique case-insensitively.")
	userName.Required, userName.Uniqueness = true, "server"
	formatted := attr("formatted", "string", "The full name; the owner's display name.")
	given := attr("givenName", "string", "Given name; makes the display name when none is given, not kept.")
	family := attr("familyName", "string", "Family name; makes the display name when none is given, not kept.")
	given.Mutability, given.Returned = "writeOnly", "never"
	family.Mutability, family.Returned = "writeOnly", "never"
	name := attr("name", "complex", "The components of the User's name.")
	name.SubAttributes = []Attribute{formatted, given, family}
	value := attr("value", "string", "The email address, lowercased.")
	typ := attr("type", "string", "Always work: an owner has one email.")
	typ.CanonicalValues = []string{"work"}
	primary := attr("primary", "boolean", "Always true.")
	emails := attr("emails", "complex", "The owner's email: one value, the primary work email.")
	emails.MultiValued = true
	emails.SubAttributes = []Attribute{value, typ, primary}
	active := attr("active", "boolean", "false deactivates the owner; agents left with no active owner are orphaned.")
	return Schema{
		Schemas: []string{SchemaSchema}, ID: SchemaUser, Name: "User", Description: "User Account (an owner of agents)",
		Attributes: []Attribute{
			userName, name,
			attr("displayName", "string", "The name of the User, suitable for display."),
			emails, active,
		},
		Meta: DocMeta{ResourceType: "Schema", Location: base + "/Schemas/" + SchemaUser},
	}
}

// AgentResourceType returns the Agent resource type
// (draft-wzdk-scim-agent-resource-00, ADR 0025).
func AgentResourceType(base string) ResourceType {
	return ResourceType{
		Schemas: []string{SchemaResourceType}, ID: "Agent", Name: "Agent", Endpoint: "/Agents",
		Description: "An AI agent's identity: named, owned, with a stated purpose (ADR 0025)", Schema: SchemaAgent,
		Meta: DocMeta{ResourceType: "ResourceType", Location: base + "/ResourceTypes/Agent"},
	}
}

// AgentSchema returns the Agent schema as the provider maps it (the
// common attributes id, externalId and meta are not listed, RFC 7643
// §3.1): name is the agent's name (immutable, unique forever),
// description its purpose, owners its owners, active its state.
// displayName is read-only: it shows the name.
func AgentSchema(base string) Schema {
	name := attr("name", "string",
		"The agent's name: a lowercase DNS label, unique in the trust domain forever (deprovisioned agents keep theirs); never changes.")
	name.Required, name.Mutability, name.Uniqueness = true, "immutable", "server"
	display := attr("displayName", "string", "The agent's name, for display; a value sent is ignored.")
	display.Mutability = "readOnly"
	desc := attr("description", "string", "The agent's purpose: its business justification.")
	desc.Required = true
	value := attr("value", "string", "The id of the User (owner) accountable for the agent.")
	value.Required, value.CaseExact = true, true
	ref := attr("$ref", "reference", "The URI of the User.")
	ref.Mutability, ref.ReferenceTypes = "readOnly", []string{"User"}
	owners := attr("owners", "complex", "The Users accountable for the agent: at least one, each active when added.")
	owners.MultiValued, owners.Required = true, true
	owners.SubAttributes = []Attribute{value, ref}
	active := attr("active", "boolean",
		"false suspends the agent (no credentials, its tokens stop being active), true resumes it; DELETE deprovisions it for good.")
	return Schema{
		Schemas: []string{SchemaSchema}, ID: SchemaAgent, Name: "Agent", Description: "AI agent identity (an agentid agent)",
		Attributes: []Attribute{name, display, desc, owners, active},
		Meta:       DocMeta{ResourceType: "Schema", Location: base + "/Schemas/" + SchemaAgent},
	}
}
