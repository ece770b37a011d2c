//! ACL schemes: `world`, `auth`, `digest`, `ip` and `x509` (the subject of the TLS
//! client certificate a session connected with), checked the way ZooKeeper's
//! `ZooKeeperServer.checkACL` does.

use crate::proto::{Acl, ErrorCode, Id};

/// The id `addAuth digest user:password` authenticates as: `user:base64(sha1(user:password))`.
pub fn digest_id(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    Some(format!(
        "{user}:{}",
        base64(&sha1(user_password.as_bytes()))
    ))
}

/// Whether any ACL entry grants `perm` to one of `auth` (the session's ids; an `ip`
/// id is always among them). The super user (a `super` id, given to a session that
/// authenticated with the configured super digest) passes every check.
pub fn check(acls: &[Acl], perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
    if acls.is_empty() || auth.iter().any(|a| a.scheme == "super") {
        return Ok(());
    }
    for acl in acls {
        if acl.perms & perm == 0 {
            continue;
        }
        let id = &acl.id;
        if id.scheme == "world" && id.id == "anyone" {
            return Ok(());
        }
        for who in auth.iter().filter(|a| a.scheme == id.scheme) {
            let matches = match id.scheme.as_str() {
                "ip" => ip_matches(&id.id, &who.id),
                _ => id.id == who.id,
            };
            if matches {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// Validate ACLs for create/setACL and expand the `auth` scheme into the session's
/// authenticated (non-ip) ids, as ZooKeeper's `fixupACL` does.
pub fn fixup(acls: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    if acls.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::new();
    for acl in acls {
        if acl.perms & !crate::proto::perms::ALL != 0 {
            return Err(ErrorCode::InvalidAcl);
        }
        match acl.id.scheme.as_str() {
            "world" if acl.id.id == "anyone" => out.push(acl.clone()),
            "auth" => {
                let mut any = false;
                for who in auth
                    .iter()
                    .filter(|a| a.scheme != "ip" && a.scheme != "world")
                {
                    any = true;
                    let fixed = Acl {
                        perms: acl.perms,
                        id: who.clone(),
                    };
                    if !out.contains(&fixed) {
                        out.push(fixed);
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if acl.id.id.contains(':') => out.push(acl.clone()),
            "ip" if valid_ip_acl(&acl.id.id) => out.push(acl.clone()),
            // A client certificate's subject (ZooKeeper's X509AuthenticationProvider).
            "x509" if !acl.id.id.is_empty() => out.push(acl.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

fn parse_v4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn valid_ip_acl(spec: &str) -> bool {
    let (addr, bits) = spec.split_once('/').unwrap_or((spec, "32"));
    parse_v4(addr).is_some() && bits.parse::<u32>().is_ok_and(|b| b <= 32)
}

fn ip_matches(spec: &str, client: &str) -> bool {
    let (addr, bits) = spec.split_once('/').unwrap_or((spec, "32"));
    let (Some(net), Some(ip), Ok(bits)) = (parse_v4(addr), parse_v4(client), bits.parse::<u32>())
    else {
        return spec == client;
    };
    if bits == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - bits.min(32));
    net & mask == ip & mask
}

/// SHA-1 (FIPS 180-4); only the digest scheme needs it, so it is kept here rather than
/// pulled in as a dependency.
pub fn sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut data = msg.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((msg.len() as u64) * 8).to_be_bytes());
    for block in data.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper_digest_authentication_provider() {
        // Expected value computed independently: base64(sha1("super:superpw")).
        assert_eq!(
            digest_id("super:superpw").unwrap(),
            "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn ip_ranges_match() {
        assert!(ip_matches("127.0.0.0/8", "127.0.0.2"));
        assert!(!ip_matches("10.0.0.1", "10.0.0.2"));
        assert!(ip_matches("10.0.0.1", "10.0.0.1"));
    }

    #[test]
    fn auth_scheme_needs_an_authenticated_id() {
        let acl = vec![Acl {
            perms: 31,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }];
        assert_eq!(fixup(&acl, &[]), Err(ErrorCode::InvalidAcl));
        let me = Id {
            scheme: "digest".into(),
            id: "u:h".into(),
        };
        assert_eq!(fixup(&acl, std::slice::from_ref(&me)).unwrap()[0].id, me);
    }

    #[test]
    fn x509_ids_are_certificate_subjects() {
        let id = |scheme: &str, id: &str| Id {
            scheme: scheme.into(),
            id: id.into(),
        };
        let acl = vec![Acl {
            perms: crate::proto::perms::ALL,
            id: id("x509", "CN=alice,OU=test"),
        }];
        assert_eq!(fixup(&acl, &[]).unwrap(), acl);
        assert!(
            check(
                &acl,
                crate::proto::perms::READ,
                &[id("x509", "CN=alice,OU=test")]
            )
            .is_ok()
        );
        assert_eq!(
            check(
                &acl,
                crate::proto::perms::READ,
                &[id("x509", "CN=bob,OU=test")]
            ),
            Err(ErrorCode::NoAuth)
        );
        // `auth` expands to the certificate's id too.
        let auth = vec![Acl {
            perms: crate::proto::perms::ALL,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, &[id("ip", "127.0.0.1"), id("x509", "CN=alice")]).unwrap()[0].id,
            id("x509", "CN=alice")
        );
        let empty = vec![Acl {
            perms: 1,
            id: id("x509", ""),
        }];
        assert_eq!(fixup(&empty, &[]), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn check_denies_without_permission() {
        let acl = vec![Acl {
            perms: crate::proto::perms::READ,
            id: Id {
                scheme: "digest".into(),
                id: "u:h".into(),
            },
        }];
        let me = vec![Id {
            scheme: "digest".into(),
            id: "u:h".into(),
        }];
        assert!(check(&acl, crate::proto::perms::READ, &me).is_ok());
        assert_eq!(
            check(&acl, crate::proto::perms::WRITE, &me),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(&acl, crate::proto::perms::READ, &[]),
            Err(ErrorCode::NoAuth)
        );
    }
}
