//! What a client certificate says about its holder.

/// The subject of a DER certificate, RFC 2253: last RDN first, `+` inside a
/// multi-valued RDN, keywords for the attributes RFC 2253 names and `<oid>=#<hex DER>`
/// for others.
pub fn subject_dn(certificate: &[u8]) -> Result<String, String> {
    let (cert, _) = element(certificate, 0x30)?;
    let (mut tbs, _) = element(cert, 0x30)?;
    // [0] EXPLICIT version, if present.
    if tbs.first() == Some(&0xA0) {
        tbs = any(tbs)?.1;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        tbs = any(tbs)?.1;
    }
    let (mut name, _) = element(tbs, 0x30)?;
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (mut set, rest) = element(name, 0x31)?;
        name = rest;
        let mut parts = Vec::new();
        while !set.is_empty() {
            let (mut attribute, rest) = element(set, 0x30)?;
            set = rest;
            let (oid, value) = element(attribute, 0x06)?;
            attribute = value;
            let (tag, content, whole) = tlv(attribute)?;
            let key = keyword(oid);
            let value = match (key, tag) {
                // Strings: UTF8, Printable, T61, IA5, BMP (UTF-16).
                (Some(_), 0x0C | 0x13 | 0x14 | 0x16) => escape(&String::from_utf8_lossy(content)),
                (Some(_), 0x1E) => escape(&String::from_utf16_lossy(
                    &content
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect::<Vec<_>>(),
                )),
                _ => format!("#{}", hex(whole)),
            };
            let key = key.map(str::to_string).unwrap_or_else(|| dotted(oid));
            parts.push(format!("{key}={value}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// (tag, content, the whole element) and the bytes after it.
fn tlv(der: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (tag, content, rest) = split(der)?;
    Ok((tag, content, &der[..der.len() - rest.len()]))
}

fn split(der: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "malformed certificate".to_string();
    let tag = *der.first().ok_or_else(bad)?;
    let first = *der.get(1).ok_or_else(bad)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let bytes = der.get(2..2 + n).ok_or_else(bad)?;
        (
            bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize),
            2 + n,
        )
    };
    let content = der.get(header..header + len).ok_or_else(bad)?;
    Ok((tag, content, &der[header + len..]))
}

/// An element with `tag`: its content and what follows it.
fn element(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (found, content, rest) = split(der)?;
    if found != tag {
        return Err(format!(
            "malformed certificate: tag {found:#x} where {tag:#x} belongs"
        ));
    }
    Ok((content, rest))
}

fn any(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (_, content, rest) = split(der)?;
    Ok((content, rest))
}

/// RFC 2253's keywords (Java prints exactly these).
fn keyword(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        value = (value << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == oid.len() {
            break;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn the_subject_as_java_prints_it() {
        // openssl req -subj "/C=US/ST=CA/O=Strata, Inc./OU=Service Users/CN=alice+UID=a1/
        // emailAddress=alice@example.com". Java prints the e-mail attribute, which RFC 2253
        // has no keyword for, by OID and the value's DER, and the parts of a multi-valued
        // RDN in the order they are encoded (openssl reverses those); checked against
        // X509Certificate.getSubjectX500Principal().getName() on this certificate.
        let pem = include_bytes!("testdata/alice.pem");
        let der = CertificateDer::from_pem_slice(pem).unwrap();
        assert_eq!(
            subject_dn(&der).unwrap(),
            "1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice+UID=a1,OU=Service Users,O=Strata\\, Inc.,ST=CA,C=US"
        );
        assert!(subject_dn(&der[..40]).is_err());
        assert!(subject_dn(b"").is_err());
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(" #a,b+c\"d\\e<f>g;h "),
            "\\ #a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ "
        );
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(
            dotted(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
    }
}
