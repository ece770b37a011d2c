//! The principal of a TLS client certificate, as Kafka builds it: the subject's
//! distinguished name in RFC 2253 form ([`strata_tls::x509::subject_dn`]), then
//! `ssl.principal.mapping.rules` (KIP-371) — `RULE:<regex>/<replacement>/[L|U]` rules
//! tried in order against the whole name, and `DEFAULT` for the name itself.

use regex::Regex;

/// `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct MappingRules(Vec<Rule>);

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl MappingRules {
    pub fn parse(text: &str) -> Result<MappingRules, String> {
        let syntax = Regex::new(
            r"\s*(?:RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?)|(DEFAULT))\s*(?:,|$)",
        )
        .expect("a valid expression");
        // Java's $1 is Rust's ${1} (a name may not run on into letters).
        let group = Regex::new(r"\$(\d+)").expect("a valid expression");
        let mut rules = Vec::new();
        let mut at = 0;
        let text = text.trim();
        while at < text.len() {
            let found = syntax
                .captures_at(text, at)
                .filter(|c| c.get(0).is_some_and(|m| m.start() == at))
                .ok_or_else(|| {
                    format!("ssl.principal.mapping.rules: cannot read '{}'", &text[at..])
                })?;
            at = found.get(0).expect("whole match").end();
            if found.get(4).is_some() {
                rules.push(Rule::Default);
                continue;
            }
            let unescape = |s: &str| s.replace("\\/", "/");
            let source = unescape(&found[1]);
            let pattern = Regex::new(&format!("^(?:{source})$"))
                .map_err(|e| format!("ssl.principal.mapping.rules: {source}: {e}"))?;
            let replacement = group
                .replace_all(&unescape(&found[2]), "$${$1}")
                .into_owned();
            rules.push(Rule::Replace {
                pattern,
                replacement,
                case: found[3].chars().next(),
            });
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(MappingRules(rules))
    }

    /// The short name for a distinguished name; `None` when no rule applies (Kafka
    /// refuses the connection then).
    pub fn apply(&self, dn: &str) -> Option<String> {
        for rule in &self.0 {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_mapping_rule_examples() {
        // From Kafka's documentation of ssl.principal.mapping.rules.
        let rules = MappingRules::parse(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .apply("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            rules
                .apply("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(
            rules.apply("CN=Bob.Smith,DC=example").as_deref(),
            Some("bob.smith")
        );
        assert_eq!(rules.apply("O=none").as_deref(), Some("O=none"));
        let upper = MappingRules::parse(r"RULE:^CN=(.*)$/$1x\/y/U").unwrap();
        assert_eq!(upper.apply("CN=a").as_deref(), Some("AX/Y"));
        assert_eq!(upper.apply("OU=a"), None);
        assert_eq!(
            MappingRules::parse("DEFAULT")
                .unwrap()
                .apply("CN=a")
                .as_deref(),
            Some("CN=a")
        );
        assert_eq!(
            MappingRules::parse("").unwrap().apply("CN=a").as_deref(),
            Some("CN=a")
        );
        assert!(MappingRules::parse("RULE:broken").is_err());
        assert!(MappingRules::parse("RULE:(/x/").is_err());
    }
}
