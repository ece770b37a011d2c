//! A seeded simulation: simulated consumers join, sync, heartbeat, commit, leave, crash
//! and come back against one coordinator on virtual time. After a chaotic phase the
//! survivors must converge on one Stable generation whose assignment covers every
//! partition exactly once. A failure names its seed.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::*;
use crate::GroupState;

const GROUP: &str = "sim";
const PARTITIONS: i32 = 6;
const HEARTBEAT_INTERVAL_MS: i64 = 3_000;

/// xorshift64*: enough randomness for scheduling, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Must (re)join.
    Idle,
    Joining {
        request_id: u64,
    },
    Syncing {
        request_id: u64,
        generation: i32,
    },
    Stable {
        generation: i32,
    },
}

#[derive(Debug)]
struct Client {
    name: String,
    /// `group.instance.id` of a static member.
    instance_id: Option<String>,
    member_id: String,
    phase: Phase,
    last_heartbeat_ms: i64,
    assignment: Vec<i32>,
    /// Crashed clients send nothing more.
    alive: bool,
}

impl Client {
    fn new(name: String, is_static: bool) -> Self {
        Client {
            instance_id: is_static.then(|| name.clone()),
            name,
            member_id: String::new(),
            phase: Phase::Idle,
            last_heartbeat_ms: 0,
            assignment: Vec::new(),
            alive: true,
        }
    }

    /// Reacts to an error the way the Java consumer and librdkafka do.
    fn on_error(&mut self, error: i16) {
        if error == code(ResponseError::UnknownMemberId) {
            self.member_id.clear();
        }
        self.assignment.clear();
        self.phase = Phase::Idle;
    }

    fn step(&mut self, h: &mut Harness) {
        match self.phase.clone() {
            Phase::Idle => {
                let mut join = Join::new(GROUP, &self.member_id).client(&self.name);
                if let Some(instance_id) = &self.instance_id {
                    join = join.instance(instance_id);
                }
                let request_id = h.send_join(join);
                self.phase = Phase::Joining { request_id };
            }
            Phase::Joining { request_id } => {
                let Some(response) = h.join_response(request_id) else {
                    return;
                };
                if response.error_code == code(ResponseError::MemberIdRequired) {
                    self.member_id = response.member_id.to_string();
                    self.phase = Phase::Idle;
                    return;
                }
                if response.error_code != 0 {
                    self.on_error(response.error_code);
                    return;
                }
                self.member_id = response.member_id.to_string();
                // A restarted static leader is told to skip the assignor (KIP-814).
                let assigns = response.leader == response.member_id && !response.skip_assignment;
                let assignments: Vec<(String, Bytes)> = if assigns {
                    // Round-robin, as the leader's assignor would.
                    let members: Vec<String> = response
                        .members
                        .iter()
                        .map(|m| m.member_id.to_string())
                        .collect();
                    members
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            let partitions: Vec<u8> = (0..PARTITIONS)
                                .filter(|p| *p as usize % members.len() == i)
                                .map(|p| p as u8)
                                .collect();
                            (m.clone(), Bytes::from(partitions))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let borrowed: Vec<(&str, &[u8])> = assignments
                    .iter()
                    .map(|(m, a)| (m.as_str(), a.as_ref()))
                    .collect();
                let request_id =
                    h.send_sync(GROUP, &self.member_id, response.generation_id, &borrowed);
                self.phase = Phase::Syncing {
                    request_id,
                    generation: response.generation_id,
                };
            }
            Phase::Syncing {
                request_id,
                generation,
            } => {
                let Some(response) = h.sync_response(request_id) else {
                    return;
                };
                if response.error_code != 0 {
                    self.on_error(response.error_code);
                    return;
                }
                self.assignment = response.assignment.iter().map(|p| i32::from(*p)).collect();
                self.last_heartbeat_ms = h.now_ms;
                self.phase = Phase::Stable { generation };
            }
            Phase::Stable { generation } => {
                if h.now_ms - self.last_heartbeat_ms < HEARTBEAT_INTERVAL_MS {
                    return;
                }
                self.last_heartbeat_ms = h.now_ms;
                let error = h.heartbeat_static(
                    GROUP,
                    &self.member_id,
                    self.instance_id.as_deref(),
                    generation,
                );
                if error != 0 {
                    self.on_error(error);
                    return;
                }
                // Commit progress on what it owns; must be accepted while Stable.
                let offsets: Vec<(&str, i32, i64, Option<&str>)> = self
                    .assignment
                    .iter()
                    .map(|p| ("orders", *p, h.now_ms, None))
                    .collect();
                if !offsets.is_empty() {
                    let errors = h.commit(GROUP, &self.member_id, generation, &offsets);
                    if let Some(error) = errors.into_iter().find(|e| *e != 0) {
                        assert!(
                            [
                                code(ResponseError::RebalanceInProgress),
                                code(ResponseError::IllegalGeneration),
                                code(ResponseError::UnknownMemberId)
                            ]
                            .contains(&error),
                            "unexpected commit error {error}"
                        );
                        self.on_error(error);
                    }
                }
            }
        }
    }
}

/// A live client dies without a word (kill -9, a network cut).
fn crash_one(clients: &mut [Client], rng: &mut Rng) {
    let alive: Vec<usize> = (0..clients.len()).filter(|i| clients[*i].alive).collect();
    if !alive.is_empty() {
        clients[alive[rng.below(alive.len() as u64) as usize]].alive = false;
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut h = Harness::with_config(GroupCoordinatorConfig {
        group_initial_rebalance_delay_ms: [0, 500, 3_000][rng.below(3) as usize],
        ..GroupCoordinatorConfig::default()
    });
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::new(format!("c{i}"), rng.below(3) == 0))
        .collect();

    // Chaos: random steps, crashes, departures and arrivals.
    for _ in 0..400 {
        match rng.below(100) {
            0..=2 => crash_one(&mut clients, &mut rng),
            3..=4 => {
                let i = rng.below(clients.len() as u64) as usize;
                let client = &mut clients[i];
                if client.alive && !client.member_id.is_empty() {
                    let member_id = client.member_id.clone();
                    h.leave(GROUP, &member_id);
                    client.alive = false;
                }
            }
            5..=7 if clients.iter().filter(|c| c.alive).count() < 6 => {
                let name = format!("c{}", clients.len());
                clients.push(Client::new(name, rng.below(3) == 0));
            }
            8..=9 => {
                // A static member's process restarts: same group.instance.id, no
                // member id, nothing remembered.
                let i = rng.below(clients.len() as u64) as usize;
                let client = &mut clients[i];
                if client.alive && client.instance_id.is_some() {
                    client.member_id.clear();
                    client.assignment.clear();
                    client.phase = Phase::Idle;
                }
            }
            _ => {
                let i = rng.below(clients.len() as u64) as usize;
                if clients[i].alive {
                    clients[i].step(&mut h);
                }
            }
        }
        h.advance(rng.below(1_500) as i64);
    }

    // Often one more crash right before the calm, so that only its session timeout can
    // notice it.
    if rng.below(2) == 0 {
        crash_one(&mut clients, &mut rng);
    }

    // Calm: survivors keep running; the dead expire.
    for _ in 0..400 {
        for client in clients.iter_mut().filter(|c| c.alive) {
            client.step(&mut h);
        }
        h.advance(500);
    }

    let alive: Vec<&Client> = clients.iter().filter(|c| c.alive).collect();
    if alive.is_empty() {
        assert!(
            matches!(
                h.coordinator.group_state(GROUP),
                None | Some(GroupState::Empty)
            ),
            "seed {seed}: no consumer left but group is {:?}",
            h.coordinator.group_state(GROUP)
        );
        return;
    }
    assert_eq!(
        h.coordinator.group_state(GROUP),
        Some(GroupState::Stable),
        "seed {seed}"
    );
    assert_eq!(
        h.coordinator.stats().members_by_group[GROUP],
        alive.len(),
        "seed {seed}: members {alive:?}"
    );
    let generations: Vec<&Phase> = alive.iter().map(|c| &c.phase).collect();
    assert!(
        generations.windows(2).all(|w| w[0] == w[1])
            && matches!(generations[0], Phase::Stable { .. }),
        "seed {seed}: phases {generations:?}"
    );
    let mut owned: Vec<i32> = alive
        .iter()
        .flat_map(|c| c.assignment.iter().copied())
        .collect();
    owned.sort_unstable();
    assert_eq!(owned, (0..PARTITIONS).collect::<Vec<_>>(), "seed {seed}");
}

#[test]
fn consumers_converge_on_one_generation_owning_every_partition_once() {
    for seed in 0..150 {
        run(seed);
    }
}
