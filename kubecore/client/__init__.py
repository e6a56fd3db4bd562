"""The only layer that talks to the API server: the REST client (`rest`) and the Event recorder
(`events`), which writes through it."""
