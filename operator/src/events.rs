//! Kubernetes Events (`events.k8s.io/v1`) for the objects the operator reconciles.
//!
//! An Event that repeats within [`SERIES_WINDOW`] becomes a series (one object whose
//! `series.count` grows), as client-go's correlator does — but only if it is the *same*
//! Event: type, reason, action, the object it regards and the note. kube-runtime's
//! `Recorder` leaves the note out of that key, so "restarting broker 1" after "restarting
//! broker 0" was shown to people as "restarting broker 0" seen twice: a roll, a drain or
//! a scale told its story with the first sentence only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use tokio::sync::Mutex;

/// How long a published Event can still grow into a series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// What makes two Events the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    type_: &'static str,
    reason: String,
    action: String,
    note: Option<String>,
    regarding: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
}

impl Key {
    fn of(event: &Event, regarding: &ObjectReference) -> Key {
        Key {
            type_: type_name(event.type_),
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
            regarding: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// A published Event that may still grow into a series.
struct Published {
    event: K8sEvent,
    at: Instant,
}

pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<HashMap<Key, Published>>,
}

impl Recorder {
    /// `instance`: this operator replica (its pod name), `controller` when unknown.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Recorder {
        Recorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the Event in the namespace of the object it regards, or counts it into the
    /// series of the same Event published within [`SERIES_WINDOW`].
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = Key::of(event, regarding);
        let mut recent = self.recent.lock().await;
        recent.retain(|_, p| p.at.elapsed() < SERIES_WINDOW);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let now = Timestamp::now();
        let published = match recent.remove(&key) {
            Some(Published {
                event: mut seen, ..
            }) => {
                let count = seen.series.as_ref().map_or(2, |s| s.count + 1);
                seen.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                let name = seen.metadata.name.clone().unwrap_or_default();
                let patch = serde_json::json!({ "series": seen.series });
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => seen,
                    // Gone already (an Event's time to live is short): a new one.
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        let fresh = self.new_event(event, regarding, now);
                        api.create(&PostParams::default(), &fresh).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                api.create(
                    &PostParams::default(),
                    &self.new_event(event, regarding, now),
                )
                .await?
            }
        };
        recent.insert(
            key,
            Published {
                event: published,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_name(event.type_).to_string()),
            ..K8sEvent::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Roll".into(),
            secondary: None,
        }
    }

    fn cluster(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("KafkaCluster".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn only_the_same_sentence_about_the_same_object_makes_a_series() {
        let demo = cluster("demo");
        let restart = |n| event("RestartingBroker", &format!("restarting broker {n}"));
        assert_eq!(Key::of(&restart(0), &demo), Key::of(&restart(0), &demo));
        assert_ne!(Key::of(&restart(0), &demo), Key::of(&restart(1), &demo));
        assert_ne!(
            Key::of(&restart(0), &demo),
            Key::of(&restart(0), &cluster("other"))
        );
        let mut warning = restart(0);
        warning.type_ = EventType::Warning;
        assert_ne!(Key::of(&restart(0), &demo), Key::of(&warning, &demo));
    }
}
