package master

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/flowact/flowact/robot/ros/xmlrpc"
)

// ROS status codes, the first element of every Master API answer [code, statusMessage, value].
const (
	codeError   = -1 // the caller erred: bad arguments, unknown name
	codeFailure = 0  // the call was valid but failed
	codeSuccess = 1
)

// anyType is the topic type wildcard a subscriber may register with.
const anyType = "*"

// reply builds the [code, statusMessage, value] triple.
func reply(code int, msg string, v xmlrpc.Value) xmlrpc.Value {
	return xmlrpc.Array(xmlrpc.Int(int64(code)), xmlrpc.String(msg), v)
}

// argError is a ROS-level argument error: answered as [-1, message, the method's error value].
type argError string

func (e argError) Error() string { return string(e) }

// args holds a call's parameters after the caller_id, with validators that resolve names the way
// rosmaster's apivalidate does.
type args struct {
	caller string
	p      []xmlrpc.Value
}

func (a *args) str(i int, name string) (string, error) {
	s, ok := a.p[i].AsString()
	if !ok {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] must be a string", name))
	}
	return s, nil
}

// key is a non-empty string, resolved against the caller (parameter keys).
func (a *args) key(i int, name string) (string, error) {
	s, err := a.str(i, name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] must be specified and non-empty", name))
	}
	return resolve(s, a.caller), nil
}

// graphName is a topic, service or node name: non-empty, no ':' or ' ', resolved; the root
// is refused when notRoot.
func (a *args) graphName(i int, name string, notRoot bool) (string, error) {
	s, err := a.str(i, name)
	if err != nil || s == "" {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] must be a non-empty string", name))
	}
	if strings.ContainsAny(s, ": ") {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] contains illegal chars", name))
	}
	if notRoot && s == "/" {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] cannot be the global namespace", name))
	}
	return resolve(s, a.caller), nil
}

// api is a node's slave URI (http://) or a service URI (rosrpc://).
func (a *args) api(i int, name string) (string, error) {
	s, ok := a.p[i].AsString()
	if !ok || s == "" {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] is not an XMLRPC URI", name))
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "rosrpc://") {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] is not an RPC URI", name))
	}
	return s, nil
}

// typeName is "*" or a package/Type message type.
func (a *args) typeName(i int, name string) (string, error) {
	s, ok := a.p[i].AsString()
	if ok && s == anyType {
		return s, nil
	}
	if !ok || s == "" {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] must be a non-empty string", name))
	}
	if strings.Count(s, "/") != 1 {
		return "", argError(fmt.Sprintf("ERROR: parameter [%s] is not a valid package resource name", name))
	}
	return s, nil
}

// handler is one Master API method after caller_id extraction.
type handler func(a *args) (code int, msg string, v xmlrpc.Value, err error)

// route registers name with arity n (after caller_id) and the value sent on an error.
func (m *Master) route(name string, n int, errValue xmlrpc.Value, h handler) {
	m.mux.Handle(name, func(_ context.Context, p []xmlrpc.Value) (xmlrpc.Value, error) {
		if len(p) == 0 {
			return reply(codeError, "missing required caller_id parameter", errValue), nil
		}
		if len(p) != n+1 {
			return reply(codeError, "Error: bad call arity", errValue), nil
		}
		caller, ok := p[0].AsString()
		if !ok {
			return reply(codeError, "caller_id must be a string", errValue), nil
		}
		code, msg, v, err := h(&args{caller: caller, p: p[1:]})
		if err != nil {
			if ae, ok := err.(argError); ok {
				return reply(codeError, string(ae), errValue), nil
			}
			return reply(codeFailure, "Internal failure: "+err.Error(), errValue), nil
		}
		return reply(code, msg, v), nil
	})
}

var (
	zero      = xmlrpc.Int(0)
	emptyStr  = xmlrpc.String("")
	emptyList = xmlrpc.Array()
)

func (m *Master) routes() {
	m.route("getUri", 0, emptyStr, func(*args) (int, string, xmlrpc.Value, error) {
		return codeSuccess, "", xmlrpc.String(m.URI()), nil
	})
	m.route("getPid", 0, xmlrpc.Int(-1), func(*args) (int, string, xmlrpc.Value, error) {
		return codeSuccess, "", xmlrpc.Int(int64(os.Getpid())), nil
	})

	// Parameter server.
	m.route("setParam", 2, zero, m.setParam)
	m.route("getParam", 1, zero, m.getParam)
	m.route("deleteParam", 1, zero, m.deleteParam)
	m.route("hasParam", 1, xmlrpc.Bool(false), m.hasParam)
	m.route("searchParam", 1, zero, m.searchParam)
	m.route("getParamNames", 0, emptyList, func(*args) (int, string, xmlrpc.Value, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return codeSuccess, "Parameter names", xmlrpc.Strings(m.params.names()), nil
	})
	m.route("subscribeParam", 2, zero, m.subscribeParam)
	m.route("unsubscribeParam", 2, zero, m.unsubscribeParam)

	// Registration.
	m.route("registerService", 3, zero, m.registerService)
	m.route("unregisterService", 2, zero, m.unregisterHandler(kindService))
	m.route("lookupService", 1, emptyStr, m.lookupService)
	m.route("registerSubscriber", 3, emptyList, m.registerSubscriber)
	m.route("unregisterSubscriber", 2, zero, m.unregisterHandler(kindSub))
	m.route("registerPublisher", 3, emptyList, m.registerPublisher)
	m.route("unregisterPublisher", 2, zero, m.unregisterHandler(kindPub))
	m.route("lookupNode", 1, emptyStr, m.lookupNode)
	m.route("getPublishedTopics", 1, zero, m.getPublishedTopics)
	m.route("getTopicTypes", 0, emptyList, m.getTopicTypes)
	m.route("getSystemState", 0, xmlrpc.Array(emptyList, emptyList, emptyList), m.getSystemState)
}

// --- parameter server ---

func (m *Master) setParam(a *args) (int, string, xmlrpc.Value, error) {
	key, err := a.key(0, "key")
	if err != nil {
		return 0, "", zero, err
	}
	v := a.p[1]
	if v.IsNil() {
		return 0, "", zero, argError("ERROR: parameter [value] must be specified")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.params.set(key, v); err != nil {
		return 0, "", zero, err
	}
	m.notifyParam(key, v, a.caller, false)
	m.log.Debug("master: +PARAM", "key", key, "by", a.caller)
	return codeSuccess, fmt.Sprintf("parameter %s set", key), zero, nil
}

func (m *Master) getParam(a *args) (int, string, xmlrpc.Value, error) {
	key, err := a.key(0, "key")
	if err != nil {
		return 0, "", zero, err
	}
	m.mu.Lock()
	v, ok := m.params.get(key)
	m.mu.Unlock()
	if !ok {
		return codeError, fmt.Sprintf("Parameter [%s] is not set", key), zero, nil
	}
	return codeSuccess, fmt.Sprintf("Parameter [%s]", key), v, nil
}

func (m *Master) deleteParam(a *args) (int, string, xmlrpc.Value, error) {
	key, err := a.key(0, "key")
	if err != nil {
		return 0, "", zero, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.params.del(key) {
		return codeError, fmt.Sprintf("parameter [%s] is not set", key), zero, nil
	}
	m.notifyParam(key, xmlrpc.Struct(), "", true)
	m.log.Debug("master: -PARAM", "key", key, "by", a.caller)
	return codeSuccess, fmt.Sprintf("parameter %s deleted", key), zero, nil
}

func (m *Master) hasParam(a *args) (int, string, xmlrpc.Value, error) {
	key, err := a.key(0, "key")
	if err != nil {
		return 0, "", xmlrpc.Bool(false), err
	}
	m.mu.Lock()
	ok := m.params.has(key)
	m.mu.Unlock()
	return codeSuccess, key, xmlrpc.Bool(ok), nil
}

func (m *Master) searchParam(a *args) (int, string, xmlrpc.Value, error) {
	key, err := a.str(0, "key")
	if err != nil {
		return 0, "", zero, err
	}
	if key == "" {
		return 0, "", zero, argError("ERROR: parameter [key] must be specified and non-empty")
	}
	if key[0] == '~' || !strings.HasPrefix(a.caller, "/") {
		return 0, "", zero, fmt.Errorf("searchParam needs a relative or global key and a global caller_id")
	}
	m.mu.Lock()
	found, ok := m.params.search(a.caller, key)
	m.mu.Unlock()
	if !ok {
		return codeError, fmt.Sprintf("Cannot find parameter [%s] in an upwards search", key), emptyStr, nil
	}
	return codeSuccess, fmt.Sprintf("Found [%s]", found), xmlrpc.String(found), nil
}

func (m *Master) subscribeParam(a *args) (int, string, xmlrpc.Value, error) {
	api, err := a.api(0, "caller_api")
	if err != nil {
		return 0, "", zero, err
	}
	key, err := a.key(1, "key")
	if err != nil {
		return 0, "", zero, err
	}
	sk := nsKey(key)
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.params.get(sk)
	if !ok {
		v = xmlrpc.Struct() // "not set" is the empty dict
	}
	m.register(kindParamSub, sk, a.caller, api, "")
	m.log.Debug("master: +CACHEDPARAM", "key", key, "by", a.caller)
	return codeSuccess, fmt.Sprintf("Subscribed to parameter [%s]", key), v, nil
}

func (m *Master) unsubscribeParam(a *args) (int, string, xmlrpc.Value, error) {
	api, err := a.api(0, "caller_api")
	if err != nil {
		return 0, "", zero, err
	}
	key, err := a.key(1, "key")
	if err != nil {
		return 0, "", zero, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, n := m.reg.unregister(kindParamSub, nsKey(key), a.caller, api)
	m.log.Debug("master: -CACHEDPARAM", "key", key, "by", a.caller)
	return codeSuccess, fmt.Sprintf("Unsubscribe to parameter [%s]", key), xmlrpc.Int(int64(n)), nil
}

// notifyParam queues paramUpdate calls for a change of key (with m.mu held), as rosmaster's
// compute_param_updates does: subscribers of key or of a namespace above it get (key, value),
// except the caller that made the change; subscribers below key get their part of the new
// value, or {} if the change removed it. deleted marks a deleteParam, whose value is {}.
func (m *Master) notifyParam(key string, value xmlrpc.Value, ignore string, deleted bool) {
	subs := m.reg.lists[kindParamSub]
	if len(subs) == 0 {
		return
	}
	pk := nsKey(key)
	_, isDict := value.AsStruct()
	var below map[string]xmlrpc.Value // keys under pk that the new value defines
	if isDict && !deleted {
		below = map[string]xmlrpc.Value{}
		var walk func(prefix string, v xmlrpc.Value)
		walk = func(prefix string, v xmlrpc.Value) {
			ms, _ := v.AsStruct()
			for _, mem := range ms {
				k := join(prefix, mem.Name) + "/"
				below[k] = mem.Value
				if mem.Value.Kind() == xmlrpc.KindStruct {
					walk(k, mem.Value)
				}
			}
		}
		walk(pk, value)
	}
	for _, sk := range slices.Sorted(maps.Keys(subs)) {
		switch {
		case strings.HasPrefix(pk, sk):
			for _, p := range subs[sk] {
				if p.id != ignore {
					m.enqueue(p.api, task{kind: taskParamUpdate, key: pk, value: value})
				}
			}
		case isDict && strings.HasPrefix(sk, pk):
			v, ok := below[sk]
			if !ok {
				v = xmlrpc.Struct()
			}
			for _, p := range subs[sk] {
				m.enqueue(p.api, task{kind: taskParamUpdate, key: sk, value: v})
			}
		}
	}
}

// paramRejected handles a node's -1 answer to paramUpdate: it is not subscribed to key, so its
// subscription is dropped.
func (m *Master) paramRejected(api, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.reg.idsAt(api) {
		m.reg.unregister(kindParamSub, key, id, api)
	}
}

// --- registration ---

// register records a registration (with m.mu held) and, when it replaced a node of the same
// name at another URI, tells the old node to shut down and its topics' subscribers that it no
// longer publishes. rosmaster does the former but not the latter.
func (m *Master) register(k regKind, key, id, api, serviceAPI string) {
	b := m.reg.register(k, key, id, api, serviceAPI)
	if b == nil {
		return
	}
	m.log.Info("master: node re-registered from a new URI; shutting down the old one", "node", id, "old", b.oldAPI, "new", api)
	m.enqueue(b.oldAPI, task{kind: taskShutdown, value: xmlrpc.String(fmt.Sprintf("[%s] Reason: new node registered with same name", id))})
	for _, topic := range b.pubTopics {
		if k == kindPub && topic == key {
			continue // the caller notifies for this one
		}
		m.notifyTopic(topic)
	}
}

// notifyTopic sends every subscriber of topic its current publisher list (m.mu held).
func (m *Master) notifyTopic(topic string) {
	pubs := xmlrpc.Strings(m.reg.apis(kindPub, topic))
	for _, api := range m.reg.apis(kindSub, topic) {
		m.enqueue(api, task{kind: taskPublisherUpdate, key: topic, value: pubs})
	}
}

func (m *Master) registerService(a *args) (int, string, xmlrpc.Value, error) {
	svc, err := a.graphName(0, "service", true)
	if err != nil {
		return 0, "", zero, err
	}
	svcAPI, err := a.api(1, "service_api")
	if err != nil {
		return 0, "", zero, err
	}
	api, err := a.api(2, "caller_api")
	if err != nil {
		return 0, "", zero, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.register(kindService, svc, a.caller, api, svcAPI)
	m.log.Debug("master: +SERVICE", "service", svc, "node", a.caller, "api", api)
	return codeSuccess, fmt.Sprintf("Registered [%s] as provider of [%s]", a.caller, svc), xmlrpc.Int(1), nil
}

func (m *Master) lookupService(a *args) (int, string, xmlrpc.Value, error) {
	svc, err := a.graphName(0, "service", true)
	if err != nil {
		return 0, "", emptyStr, err
	}
	m.mu.Lock()
	s, ok := m.reg.services[svc]
	m.mu.Unlock()
	if !ok {
		return codeError, "no provider", emptyStr, nil
	}
	return codeSuccess, fmt.Sprintf("rosrpc URI: [%s]", s.serviceAPI), xmlrpc.String(s.serviceAPI), nil
}

// topicRegistration is the parameters of registerSubscriber and registerPublisher: topic,
// topic_type and caller_api.
func (a *args) topicRegistration() (topic, typ, api string, err error) {
	if topic, err = a.graphName(0, "topic", true); err != nil {
		return "", "", "", err
	}
	if typ, err = a.typeName(1, "topic_type"); err != nil {
		return "", "", "", err
	}
	if api, err = a.api(2, "caller_api"); err != nil {
		return "", "", "", err
	}
	return topic, typ, api, nil
}

func (m *Master) registerSubscriber(a *args) (int, string, xmlrpc.Value, error) {
	topic, typ, api, err := a.topicRegistration()
	if err != nil {
		return 0, "", emptyList, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.register(kindSub, topic, a.caller, api, "")
	if _, known := m.reg.types[topic]; !known && typ != anyType {
		m.reg.types[topic] = typ
	}
	m.log.Debug("master: +SUB", "topic", topic, "node", a.caller, "api", api)
	return codeSuccess, fmt.Sprintf("Subscribed to [%s]", topic), xmlrpc.Strings(m.reg.apis(kindPub, topic)), nil
}

func (m *Master) registerPublisher(a *args) (int, string, xmlrpc.Value, error) {
	topic, typ, api, err := a.topicRegistration()
	if err != nil {
		return 0, "", emptyList, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.register(kindPub, topic, a.caller, api, "")
	if _, known := m.reg.types[topic]; typ != anyType || !known {
		m.reg.types[topic] = typ
	}
	m.notifyTopic(topic)
	m.log.Debug("master: +PUB", "topic", topic, "node", a.caller, "api", api)
	return codeSuccess, fmt.Sprintf("Registered [%s] as publisher of [%s]", a.caller, topic), xmlrpc.Strings(m.reg.apis(kindSub, topic)), nil
}

// unregisterHandler is the handler of unregisterPublisher, unregisterSubscriber and
// unregisterService (k): the caller drops its registration of a topic or service made with the
// given API. The three differ only in their parameters' names (rosmaster's, which its error
// messages show) and in that subscribers hear, through publisherUpdate, of a publisher that left.
func (m *Master) unregisterHandler(k regKind) handler {
	name, apiName, tag := "topic", "caller_api", "master: -PUB"
	switch k {
	case kindSub:
		tag = "master: -SUB"
	case kindService:
		name, apiName, tag = "service", "service_api", "master: -SERVICE"
	}
	return func(a *args) (int, string, xmlrpc.Value, error) {
		key, err := a.graphName(0, name, true)
		if err != nil {
			return 0, "", zero, err
		}
		api, err := a.api(1, apiName)
		if err != nil {
			return 0, "", zero, err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		msg, n := m.reg.unregister(k, key, a.caller, api)
		if k == kindPub && n > 0 {
			m.notifyTopic(key)
		}
		m.log.Debug(tag, name, key, "node", a.caller)
		return codeSuccess, msg, xmlrpc.Int(int64(n)), nil
	}
}

func (m *Master) lookupNode(a *args) (int, string, xmlrpc.Value, error) {
	name, err := a.graphName(0, "node", false)
	if err != nil {
		return 0, "", emptyStr, err
	}
	m.mu.Lock()
	ref := m.reg.nodes[name]
	m.mu.Unlock()
	if ref == nil {
		return codeError, fmt.Sprintf("unknown node [%s]", name), emptyStr, nil
	}
	return codeSuccess, "node api", xmlrpc.String(ref.api), nil
}

func (m *Master) getPublishedTopics(a *args) (int, string, xmlrpc.Value, error) {
	sub, err := a.str(0, "subgraph")
	if err != nil {
		return 0, "", zero, err
	}
	if sub != "" {
		sub = resolve(sub, a.caller)
		if !strings.HasSuffix(sub, "/") {
			sub += "/"
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []xmlrpc.Value
	for _, t := range slices.Sorted(maps.Keys(m.reg.lists[kindPub])) {
		if strings.HasPrefix(t, sub) {
			out = append(out, xmlrpc.Strings([]string{t, m.reg.types[t]}))
		}
	}
	return codeSuccess, "current topics", xmlrpc.Array(out...), nil
}

func (m *Master) getTopicTypes(*args) (int, string, xmlrpc.Value, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []xmlrpc.Value
	for _, t := range slices.Sorted(maps.Keys(m.reg.types)) {
		out = append(out, xmlrpc.Strings([]string{t, m.reg.types[t]}))
	}
	return codeSuccess, "current system state", xmlrpc.Array(out...), nil
}

func (m *Master) getSystemState(*args) (int, string, xmlrpc.Value, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var lists [3]xmlrpc.Value
	for i, k := range []regKind{kindPub, kindSub, kindService} {
		st := m.reg.state(k)
		vs := make([]xmlrpc.Value, len(st))
		for j, s := range st {
			vs[j] = xmlrpc.Array(xmlrpc.String(s.key), xmlrpc.Strings(s.ids))
		}
		lists[i] = xmlrpc.Array(vs...)
	}
	return codeSuccess, "current system state", xmlrpc.Array(lists[:]...), nil
}
