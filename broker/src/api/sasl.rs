//! SaslHandshake and SaslAuthenticate where no authentication is under way: on a
//! `PLAINTEXT` or `SSL` listener, or after authentication on a connection without
//! re-authentication. Kafka answers ILLEGAL_SASL_STATE; the exchange itself is
//! [`crate::security::sasl`]'s, before requests reach this layer.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::{RequestContext, str_bytes};
use crate::Broker;

pub async fn handshake(
    _: &Broker,
    _: &RequestContext<'_>,
    _: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

pub async fn authenticate(
    _: &Broker,
    _: &RequestContext<'_>,
    _: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(str_bytes(
            "SaslAuthenticate request received outside a SASL authentication",
        )))
}
