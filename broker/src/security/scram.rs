//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them (KIP-84):
//! the credential Kafka stores per user and mechanism, the server's two-step exchange and
//! the client's (the broker's own logins on an inter-broker SASL listener).
//!
//! Pure: the exchanges take and return messages; randomness comes in as the nonce.
//!
//! A stored credential is Kafka's `salt=<b64>,stored_key=<b64>,server_key=<b64>,
//! iterations=<n>`, kept under the mechanism's name in `/config/users/<user>`, so a
//! credential written by `kafka-configs` against either system is read by both.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2};

/// Kafka's bounds on a credential's iteration count (`ScramMechanism`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name, also the config key under `/config/users/<user>`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism's id in Alter/DescribeUserScramCredentials.
    pub fn id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_id(id: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.id() == id)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn output_len(self) -> usize {
        self.digest().output_len()
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }

    /// `Hi(password, salt, i)`: PBKDF2 with the mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        let rounds = NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(self.pbkdf2(), rounds, salt, password, &mut out);
        out
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server keeps of a password: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a salted password, as AlterUserScramCredentials carries it.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.mac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.mac(salted_password, b"Server Key"),
            iterations,
        }
    }

    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations as u32);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// Kafka's stored form (`ScramCredentialUtils.credentialToString`).
    pub fn to_config_value(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    pub fn from_config_value(value: &str) -> Result<ScramCredential, String> {
        let (mut salt, mut stored, mut server, mut iterations) = (None, None, None, None);
        for part in value.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not key=value"))?;
            let b64 = |v: &str| B64.decode(v).map_err(|e| format!("{k}: {e}"));
            match k {
                "salt" => salt = Some(b64(v)?),
                "stored_key" => stored = Some(b64(v)?),
                "server_key" => server = Some(b64(v)?),
                "iterations" => {
                    iterations = Some(v.parse::<i32>().map_err(|e| format!("iterations: {e}"))?)
                }
                _ => {}
            }
        }
        match (salt, stored, server, iterations) {
            (Some(salt), Some(stored_key), Some(server_key), Some(iterations)) => {
                Ok(ScramCredential {
                    salt,
                    stored_key,
                    server_key,
                    iterations,
                })
            }
            _ => Err("a SCRAM credential needs salt, stored_key, server_key and iterations".into()),
        }
    }
}

/// Why an exchange failed. Clients are told only that authentication failed; the reason
/// is for the broker's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScramError(pub String);

fn fail<T>(reason: impl Into<String>) -> Result<T, ScramError> {
    Err(ScramError(reason.into()))
}

/// `saslname` decoding: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn decode_saslname(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return fail(format!("invalid username encoding in '{name}'")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The first message of a client, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `n,a=<authzid>,`: echoed base64-encoded in the final message.
    pub gs2_header: String,
    pub username: String,
    pub nonce: String,
    /// `client-first-message-bare`, part of the signed AuthMessage.
    pub bare: String,
    /// Extensions after the nonce (`tokenauth=true` from delegation tokens, ...).
    pub extensions: Vec<(String, String)>,
}

impl ClientFirst {
    pub fn parse(message: &[u8]) -> Result<ClientFirst, ScramError> {
        let text =
            std::str::from_utf8(message).or_else(|_| fail("client-first-message is not UTF-8"))?;
        // gs2-cbind-flag "," [authzid] "," bare
        let mut parts = text.splitn(3, ',');
        let (Some(cbind), Some(authzid_field), Some(bare)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return fail("client-first-message has no GS2 header");
        };
        match cbind {
            "n" | "y" => {}
            _ => return fail("channel binding is not supported"),
        }
        let authzid = match authzid_field {
            "" => None,
            a => Some(decode_saslname(a.strip_prefix("a=").ok_or_else(|| {
                ScramError(format!("invalid authorization id '{a}'"))
            })?)?),
        };
        let mut fields = bare.split(',');
        let username = match fields.next().and_then(|f| f.strip_prefix("n=")) {
            Some(u) if !u.is_empty() => decode_saslname(u)?,
            _ => return fail("client-first-message has no username"),
        };
        let nonce = match fields.next().and_then(|f| f.strip_prefix("r=")) {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => return fail("client-first-message has no nonce"),
        };
        let extensions = fields
            .map(|f| {
                f.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| ScramError(format!("invalid extension '{f}'")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(a) = authzid
            && a != username
        {
            return fail(format!(
                "authorization id '{a}' is not the username '{username}'"
            ));
        }
        Ok(ClientFirst {
            gs2_header: format!("{cbind},{authzid_field},"),
            username,
            nonce,
            bare: bare.to_string(),
            extensions,
        })
    }
}

/// The server side of one exchange, after the client's first message.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    client_first: ClientFirst,
    server_first: String,
    nonce: String,
}

impl ScramServer {
    /// Answers the client's first message. `server_nonce` is fresh randomness (printable,
    /// no `,`), appended to the client's nonce.
    pub fn start(
        mechanism: ScramMechanism,
        client_first: ClientFirst,
        credential: ScramCredential,
        server_nonce: &str,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        if client_first
            .extensions
            .iter()
            .any(|(k, v)| k == "tokenauth" && v == "true")
        {
            return fail("delegation tokens are not supported");
        }
        let nonce = format!("{}{server_nonce}", client_first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let reply = server_first.clone().into_bytes();
        Ok((
            ScramServer {
                mechanism,
                credential,
                client_first,
                server_first,
                nonce,
            },
            reply,
        ))
    }

    pub fn username(&self) -> &str {
        &self.client_first.username
    }

    /// Checks the client's proof; the reply carries the server's signature.
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(client_final)
            .or_else(|_| fail("client-final-message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| ScramError("client-final-message has no proof".into()))?;
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|f| f.strip_prefix("c="));
        if binding != Some(&B64.encode(self.client_first.gs2_header.as_bytes())) {
            return fail("channel binding does not match the GS2 header");
        }
        // Kafka accepts a final nonce that ends with the server's (librdkafka 2.0, Debian's
        // kcat, sends its own nonce again in front of it), and so does this server.
        if !fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .is_some_and(|r| r.ends_with(&self.nonce))
        {
            return fail("nonce does not match");
        }
        let proof = B64
            .decode(proof)
            .or_else(|_| fail("client proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first.bare, self.server_first
        );
        let m = self.mechanism;
        let signature = m.mac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return fail("client proof has the wrong length");
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored_key = m.hash(&client_key);
        if !constant_time_eq(&stored_key, &self.credential.stored_key) {
            return fail("invalid credentials");
        }
        let server_signature = m.mac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// A fresh nonce: 26 random letters and digits, as Kafka makes them (base 36).
pub fn new_nonce() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..26)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side: the broker logging in to another broker's SASL listener.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    nonce: String,
    client_first_bare: String,
}

/// A client waiting for the server's final message.
#[derive(Debug)]
pub struct ScramClientFinal {
    mechanism: ScramMechanism,
    server_key: Vec<u8>,
    auth_message: String,
}

impl ScramClient {
    /// The client's first message.
    pub fn start(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> (ScramClient, Vec<u8>) {
        let bare = format!("n={},r={nonce}", encode_saslname(username));
        let first = format!("n,,{bare}").into_bytes();
        (
            ScramClient {
                mechanism,
                password: password.to_string(),
                nonce: nonce.to_string(),
                client_first_bare: bare,
            },
            first,
        )
    }

    /// Answers the server's first message with the proof.
    pub fn prove(self, server_first: &[u8]) -> Result<(ScramClientFinal, Vec<u8>), ScramError> {
        let text = std::str::from_utf8(server_first)
            .or_else(|_| fail("server-first-message is not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for field in text.split(',') {
            match field.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(B64.decode(v).or_else(|_| fail("salt"))?),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => return fail(format!("server error: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return fail("server-first-message lacks nonce, salt or iterations");
        };
        if !nonce.starts_with(&self.nonce) || iterations < MIN_ITERATIONS as u32 {
            return fail("server-first-message is not acceptable");
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_key = m.mac(&salted, b"Client Key");
        let signature = m.mac(&m.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        Ok((
            ScramClientFinal {
                mechanism: m,
                server_key: m.mac(&salted, b"Server Key"),
                auth_message,
            },
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
        ))
    }
}

impl ScramClientFinal {
    /// Checks the server's signature: the server, too, knew the credential.
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).unwrap_or("");
        if let Some(e) = text.strip_prefix("e=") {
            return fail(format!("server error: {e}"));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| ScramError("server-final-message has no signature".into()))?;
        let expected = self
            .mechanism
            .mac(&self.server_key, self.auth_message.as_bytes());
        if constant_time_eq(&signature, &expected) {
            Ok(())
        } else {
            fail("the server's signature does not match")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn rfc7677_sha256_exchange() {
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = ScramCredential::from_password(m, "pencil", salt, 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.username, "user");
        let (server, reply) =
            ScramServer::start(m, first, credential, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert_eq!(
            reply,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let last = server
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn a_final_nonce_with_the_client_nonce_repeated_is_accepted_as_kafka_does() {
        // librdkafka 2.0 (kcat on Debian) sends r=<client nonce><server's r=> last.
        let m = ScramMechanism::Sha512;
        let stored = ScramCredential::from_password(m, "pw", b"salt".to_vec(), 4096);
        let first = ClientFirst::parse(b"n,,n=kate,r=abc").unwrap();
        let bare = first.bare.clone();
        let (server, server_first) = ScramServer::start(m, first, stored, "xyz").unwrap();
        let server_first = String::from_utf8(server_first).unwrap();
        let without_proof = "c=biws,r=abcabcxyz";
        let auth = format!("{bare},{server_first},{without_proof}");
        let salted = m.salted_password(b"pw", b"salt", 4096);
        let client_key = m.mac(&salted, b"Client Key");
        let signature = m.mac(&m.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let last = format!("{without_proof},p={}", B64.encode(proof));
        server.finish(last.as_bytes()).unwrap();
    }

    #[test]
    fn the_client_side_of_rfc7677() {
        let m = ScramMechanism::Sha256;
        let (client, first) = ScramClient::start(m, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client, last) = client
            .prove(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            last,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    fn exchange(
        m: ScramMechanism,
        stored: &ScramCredential,
        user: &str,
        password: &str,
    ) -> Result<(), ScramError> {
        let (client, first) = ScramClient::start(m, user, password, "clientnonce");
        let first = ClientFirst::parse(&first)?;
        assert_eq!(first.username, user);
        let (server, server_first) = ScramServer::start(m, first, stored.clone(), "servernonce")?;
        let (client, last) = client.prove(&server_first)?;
        let server_final = server.finish(&last)?;
        client.verify(&server_final)
    }

    #[test]
    fn both_mechanisms_accept_the_password_and_nothing_else() {
        for m in ScramMechanism::ALL {
            let stored = ScramCredential::from_password(m, "alice-secret", b"salt".to_vec(), 4096);
            exchange(m, &stored, "alice", "alice-secret").unwrap();
            assert!(exchange(m, &stored, "alice", "alice-secreT").is_err());
            assert!(exchange(m, &stored, "alice", "").is_err());
        }
    }

    #[test]
    fn usernames_with_commas_and_equals_signs_round_trip() {
        let m = ScramMechanism::Sha512;
        let stored = ScramCredential::from_password(m, "pw", b"s".to_vec(), 4096);
        exchange(m, &stored, "a,b=c", "pw").unwrap();
        assert!(ClientFirst::parse(b"n,,n=a=2Cb=3Dc,r=x").unwrap().username == "a,b=c");
        assert!(ClientFirst::parse(b"n,,n=a=4Cb,r=x").is_err());
    }

    #[test]
    fn the_stored_form_is_kafkas() {
        // Written by Kafka 3.9's `kafka-configs --add-config 'SCRAM-SHA-256=[iterations=4096,
        // password=alice-secret]'`, read back from /config/users/alice.
        let m = ScramMechanism::Sha256;
        let c =
            ScramCredential::from_password(m, "alice-secret", b"0123456789abcdef".to_vec(), 4096);
        let text = c.to_config_value();
        assert!(text.starts_with("salt=MDEyMzQ1Njc4OWFiY2RlZg==,stored_key="));
        assert!(text.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::from_config_value(&text).unwrap(), c);
        assert!(ScramCredential::from_config_value("salt=AA==,iterations=4096").is_err());
        assert!(
            ScramCredential::from_config_value(
                "salt=!!,stored_key=AA==,server_key=AA==,iterations=1"
            )
            .is_err()
        );
    }

    #[test]
    fn malformed_client_messages_are_refused() {
        for bad in [
            &b""[..],
            b"n,,",
            b"p=tls-unique,,n=u,r=x",
            b"n,,n=,r=x",
            b"n,,n=u",
            b"n,,n=u,r=",
            b"n,a=other,n=u,r=x",
            b"n,,n=u,r=x,junk",
            b"\xff,,n=u,r=x",
        ] {
            assert!(
                ClientFirst::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = ClientFirst::parse(b"n,a=u,n=u,r=x,tokenauth=true").unwrap();
        assert_eq!(ok.gs2_header, "n,a=u,");
        let m = ScramMechanism::Sha256;
        let c = ScramCredential::from_password(m, "pw", b"s".to_vec(), 4096);
        assert!(ScramServer::start(m, ok, c.clone(), "n").is_err());

        let first = ClientFirst::parse(b"n,,n=u,r=x").unwrap();
        let (server, _) = ScramServer::start(m, first.clone(), c.clone(), "y").unwrap();
        assert!(server.finish(b"c=biws,r=xy").is_err(), "no proof");
        let (server, _) = ScramServer::start(m, first.clone(), c.clone(), "y").unwrap();
        assert!(server.finish(b"c=biws,r=xz,p=AAAA").is_err(), "wrong nonce");
        let (server, _) = ScramServer::start(m, first, c, "y").unwrap();
        assert!(
            server.finish(b"c=eSws,r=xy,p=AAAA").is_err(),
            "wrong binding"
        );
    }
}
