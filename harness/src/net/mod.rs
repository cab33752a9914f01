//! The proxy network (in progress).
