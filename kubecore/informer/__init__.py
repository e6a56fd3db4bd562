"""Local copies of API objects kept current by list and watch, and the work queue controllers
feed from them (client-go's tools/cache and util/workqueue)."""
