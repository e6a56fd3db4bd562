"""Local copies of API objects kept current by list and watch, and the work queue controllers
feed from them (client-go's tools/cache and util/workqueue), one layer per module:

    store.py       objects keyed `namespace/name` with named indexes (`object_key`, `split_key`)
    reflector.py   list, then watch from the list's version; relist on 410 Expired
    informer.py    a store kept current by a reflector, changes fanned out to handlers
    factory.py     one informer per resource and selectors in a process; `wait_for_cache_sync`
    workqueue.py   the rate-limited queue of keys and the workers that drain it

Import names from the module that defines them; this package re-exports nothing.
"""
