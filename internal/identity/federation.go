package identity

// MaxFederatesWith is the most foreign trust domains one agent may
// federate with.
const MaxFederatesWith = 32

// NormalizeFederatesWith validates the foreign trust domains an agent
// federates with and returns them deduplicated and sorted (never nil):
// each a valid trust domain name (see ValidateTrustDomain) other than own,
// the registry's trust domain; at most MaxFederatesWith. A trust domain
// need not be configured for federation yet: until it is, it contributes
// no bundle. It returns a *ValidationError for field "federates_with[i]"
// or "federates_with".
func NormalizeFederatesWith(tds []string, own string) ([]string, error) {
	return normalizeSet(FieldFederatesWith, tds, MaxFederatesWith, func(td string) error {
		if err := ValidateTrustDomain(td); err != nil {
			return err
		}
		if td == own {
			return invalid("", "%q is this server's own trust domain, not a foreign one", td)
		}
		return nil
	})
}
