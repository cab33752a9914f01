//! faultline's workloads (in progress).
