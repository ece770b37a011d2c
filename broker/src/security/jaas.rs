//! The JAAS login-module text Kafka takes in `sasl.jaas.config`:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret" user_admin="admin-secret";
//! ```
//!
//! One module, a control flag, `key=value` options (values quoted, with `\"` and `\\`
//! escapes, or bare words), and a closing `;` — the subset of JAAS syntax Kafka accepts
//! in a property (`JaasConfig`).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    pub login_module: String,
    pub options: BTreeMap<String, String>,
}

impl JaasConfig {
    pub fn parse(text: &str) -> Result<JaasConfig, String> {
        let mut tokens = Tokens::new(text);
        let login_module = tokens.word().ok_or("expected a login module class name")?;
        match tokens.word().as_deref() {
            Some("required" | "requisite" | "sufficient" | "optional") => {}
            Some(other) => return Err(format!("invalid control flag '{other}'")),
            None => return Err(format!("expected a control flag after {login_module}")),
        }
        let mut options = BTreeMap::new();
        loop {
            tokens.skip_space();
            match tokens.peek() {
                Some(';') => {
                    tokens.next();
                    break;
                }
                None => return Err("the login module must end with ';'".into()),
                _ => {}
            }
            let key = tokens.word().ok_or("expected an option name")?;
            tokens.skip_space();
            if tokens.next() != Some('=') {
                return Err(format!("expected '=' after option '{key}'"));
            }
            tokens.skip_space();
            let value = if tokens.peek() == Some('"') {
                tokens.quoted()?
            } else {
                tokens
                    .word()
                    .ok_or_else(|| format!("expected a value for option '{key}'"))?
            };
            options.insert(key, value);
        }
        tokens.skip_space();
        if tokens.peek().is_some() {
            return Err("only one login module is allowed in sasl.jaas.config".into());
        }
        Ok(JaasConfig {
            login_module,
            options,
        })
    }

    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// `user_<name>="<password>"` options: the users PLAIN accepts.
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .collect()
    }
}

struct Tokens<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens {
            chars: text.chars().peekable(),
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next(&mut self) -> Option<char> {
        self.chars.next()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.next();
        }
    }

    /// A bare word: anything up to whitespace, `=`, `;` or `"`.
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, '=' | ';' | '"') {
                break;
            }
            word.push(c);
            self.next();
        }
        (!word.is_empty()).then_some(word)
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.next(); // the opening quote
        let mut value = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(value),
                Some('\\') => match self.next() {
                    Some(c) => value.push(c),
                    None => break,
                },
                Some(c) => value.push(c),
                None => break,
            }
        }
        Err("unterminated quoted value".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_example() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(
            c.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(c.option("username"), Some("admin"));
        let users = c.plain_users();
        assert_eq!(users.len(), 2);
        assert_eq!(users["alice"], "alice-secret");
    }

    #[test]
    fn quotes_escapes_and_bare_values() {
        let c = JaasConfig::parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username=bob password="p\"w;d=x" ;"#,
        )
        .unwrap();
        assert_eq!(c.option("username"), Some("bob"));
        assert_eq!(c.option("password"), Some("p\"w;d=x"));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, wanted) in [
            ("", "login module"),
            ("M required", "end with ';'"),
            ("M always;", "control flag"),
            ("M required a=\"x;", "unterminated"),
            ("M required a;", "'='"),
            ("M required; N required;", "only one"),
        ] {
            let e = JaasConfig::parse(text).unwrap_err();
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }
}
