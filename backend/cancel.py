"""Cancellation of a running job."""


class Cancelled(Exception):
    """Raised inside a job when its cancel flag is set; the server reports it as error code 'cancelled'."""
