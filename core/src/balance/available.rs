//! The cached list of a view's available members, rebuilt only when the view's epoch changes.

use crate::fleet::{FleetView, ServerId};

/// Available members of the last view seen, in member order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Available {
    key: Option<(u64, usize, usize)>,
    ids: Vec<ServerId>,
}

impl Available {
    /// The available members of `view`; O(1) unless the view changed since the last call.
    #[inline]
    pub(crate) fn refresh(&mut self, view: &FleetView<'_>) -> &[ServerId] {
        let key = (view.epoch(), view.members().as_ptr() as usize, view.members().len());
        if self.key != Some(key) {
            self.rebuild(view);
            self.key = Some(key);
        }
        &self.ids
    }

    #[cold]
    fn rebuild(&mut self, view: &FleetView<'_>) {
        self.ids.clear();
        self.ids.extend(view.members().iter().copied().filter(|&id| view.state(id).is_available()));
    }
}
