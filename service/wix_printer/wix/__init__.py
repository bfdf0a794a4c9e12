"""Everything that speaks Wix: payload Structs, JWT verification, the search client."""
