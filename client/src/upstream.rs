//! One upstream server's state: its configuration, its current session, its tools, its link
//! status and its concurrency slots. The supervisor task (`supervise`) changes it; the call
//! pipeline reads it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use gauntlet_core::ServerId;
use rmcp::model::Tool;
use tokio::sync::{Notify, Semaphore};

use crate::config::ServerConfig;
use crate::session::{Era, Session};

/// Consecutive call timeouts after which a session is recycled.
pub const RECYCLE_AFTER_TIMEOUTS: u32 = 3;
/// The most tools taken from one server (further pages are not requested).
pub const MAX_TOOLS: usize = 10_000;
/// The most `tools/list` pages requested from one server.
pub const MAX_PAGES: usize = 100;

/// Where an upstream's connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Never connected yet, or connecting now.
    Connecting,
    /// A session is up.
    Ready,
    /// The last connect failed, or the session died; retrying after a backoff.
    Down {
        /// Why, naming the cause (never a secret).
        reason: String,
    },
}

#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) link: LinkState,
    pub(crate) era: Option<Era>,
    pub(crate) connects: u32,
    pub(crate) list_changed: bool,
    /// Whether at least one connect attempt has finished (either way).
    pub(crate) settled: bool,
}

pub(crate) struct Upstream {
    pub(crate) id: ServerId,
    pub(crate) config: ServerConfig,
    pub(crate) session: RwLock<Option<Arc<Session>>>,
    pub(crate) tools: Mutex<Option<Vec<Tool>>>,
    pub(crate) status: Mutex<Status>,
    pub(crate) stderr: Mutex<Option<Arc<Mutex<Vec<u8>>>>>,
    pub(crate) slots: Semaphore,
    pub(crate) waiting: AtomicU32,
    pub(crate) timeouts: AtomicU32,
    /// Asks the supervisor to drop the session and reconnect (or to re-list tools).
    pub(crate) kick: Notify,
    pub(crate) relist: Notify,
    /// Asks the supervisor to check the session now: a request on it failed in transport.
    pub(crate) probe: Notify,
}

impl Upstream {
    pub(crate) fn new(id: ServerId, config: ServerConfig) -> Upstream {
        let slots = Semaphore::new(config.max_concurrency as usize);
        Upstream {
            id,
            config,
            session: RwLock::new(None),
            tools: Mutex::new(None),
            status: Mutex::new(Status {
                link: LinkState::Connecting,
                era: None,
                connects: 0,
                list_changed: false,
                settled: false,
            }),
            stderr: Mutex::new(None),
            slots,
            waiting: AtomicU32::new(0),
            timeouts: AtomicU32::new(0),
            kick: Notify::new(),
            relist: Notify::new(),
            probe: Notify::new(),
        }
    }

    pub(crate) fn session(&self) -> Option<Arc<Session>> {
        self.session.read().expect("session lock").clone()
    }

    pub(crate) fn set_link(&self, link: LinkState) {
        let mut s = self.status.lock().expect("status lock");
        s.link = link;
        s.settled = true;
    }

    /// Whether requests travel over Streamable HTTP, where one request failing in transport
    /// does not end the session: nothing else would tell the supervisor.
    pub(crate) fn is_http(&self) -> bool {
        matches!(self.config.transport, crate::config::TransportSpec::Http { .. })
    }

    /// A call to this server timed out; recycle the session after too many in a row.
    pub(crate) fn note_timeout(&self) {
        if self.timeouts.fetch_add(1, Ordering::Relaxed) + 1 >= RECYCLE_AFTER_TIMEOUTS {
            self.timeouts.store(0, Ordering::Relaxed);
            self.kick.notify_one();
        }
    }

    pub(crate) fn note_answer(&self) {
        self.timeouts.store(0, Ordering::Relaxed);
    }
}
