package identity

// RiskTiersForTest exposes the tier order to the external tests.
func RiskTiersForTest() []string { return riskTiers() }
