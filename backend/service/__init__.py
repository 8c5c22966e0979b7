"""Serving the engine over ZeroMQ.

The front door (socket loop, job checking), its book of jobs and
limits, the models it may load, who may talk to it, and where the jobs run (in the server's process,
or on a Ray cluster)."""
