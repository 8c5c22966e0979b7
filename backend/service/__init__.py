"""Serving the engine over ZeroMQ: the server (socket loop, job checking and running), its book of
jobs and limits, the models it may load, who may talk to it, and the broker that puts many workers
behind one address."""
