package master

import (
	"fmt"
	"maps"
	"slices"
)

// regKind is what a node registered: the four registration lists of the Master API.
type regKind uint8

const (
	kindPub regKind = iota
	kindSub
	kindService
	kindParamSub
	numKinds
)

var kindNouns = [numKinds]string{"publisher", "subscriber", "service provider", "parameter subscriber"}

// provider is one registration: a node's name (caller_id) and its slave API URI.
type provider struct{ id, api string }

// service is a service's single provider and its rosrpc:// URI.
type service struct {
	id, api, serviceAPI string
}

// nodeRef is a node the master knows: its slave API and what it registered. A node with no
// registrations left is forgotten, as in rosmaster.
type nodeRef struct {
	api  string
	keys [numKinds]map[string]struct{}
}

func (n *nodeRef) empty() bool {
	for _, m := range n.keys {
		if len(m) > 0 {
			return false
		}
	}
	return true
}

func (n *nodeRef) add(k regKind, key string) {
	if n.keys[k] == nil {
		n.keys[k] = map[string]struct{}{}
	}
	n.keys[k][key] = struct{}{}
}

// registry holds the registrations of the graph. It is not safe for concurrent use (the Master
// locks it).
type registry struct {
	nodes    map[string]*nodeRef
	lists    [numKinds]map[string][]provider // kindService's list mirrors services
	services map[string]service
	types    map[string]string // topic -> type, never forgotten (as rosmaster)
}

func newRegistry() *registry {
	r := &registry{nodes: map[string]*nodeRef{}, services: map[string]service{}, types: map[string]string{}}
	for k := range r.lists {
		r.lists[k] = map[string][]provider{}
	}
	return r
}

// bump describes a node replaced by a new registration under the same name.
type bump struct {
	id, oldAPI string
	pubTopics  []string // topics the old node published, whose subscribers need new lists
}

// register records that node id at api registered key as kind (serviceAPI only for services).
// If id was known at another api, the old node's registrations are dropped first and the bump
// is returned, so that the caller can tell the old node to shut down.
func (r *registry) register(k regKind, key, id, api, serviceAPI string) *bump {
	var b *bump
	ref := r.nodes[id]
	if ref != nil && ref.api != api {
		b = &bump{id: id, oldAPI: ref.api, pubTopics: slices.Sorted(maps.Keys(ref.keys[kindPub]))}
		r.dropAll(id)
		ref = nil
	}
	if ref == nil {
		ref = &nodeRef{api: api}
		r.nodes[id] = ref
	}
	ref.add(k, key)
	if k == kindService {
		if old, ok := r.services[key]; ok && old.id != id {
			if o := r.nodes[old.id]; o != nil {
				delete(o.keys[kindService], key)
				if o.empty() {
					delete(r.nodes, old.id)
				}
			}
		}
		r.services[key] = service{id: id, api: api, serviceAPI: serviceAPI}
		r.lists[kindService][key] = []provider{{id, api}}
		return b
	}
	p := provider{id, api}
	if !slices.Contains(r.lists[k][key], p) {
		r.lists[k][key] = append(r.lists[k][key], p)
	}
	return b
}

// unregister removes one registration. api is the caller API, or for services the service
// API. It returns the ROS status message and 1 if a registration was removed, 0 if none matched
// (which is still a success: the wanted end state holds).
func (r *registry) unregister(k regKind, key, id, api string) (string, int) {
	ref := r.nodes[id]
	if ref == nil {
		return fmt.Sprintf("[%s] is not a registered node", id), 0
	}
	removed := false
	if k == kindService {
		if s, ok := r.services[key]; ok && s.id == id && s.serviceAPI == api {
			delete(r.services, key)
			delete(r.lists[kindService], key)
			removed = true
		}
	} else {
		l := r.lists[k][key]
		if i := slices.Index(l, provider{id, api}); i >= 0 {
			l = slices.Delete(l, i, i+1)
			if len(l) == 0 {
				delete(r.lists[k], key)
			} else {
				r.lists[k][key] = l
			}
			removed = true
		}
	}
	if !removed {
		return fmt.Sprintf("[%s] is not a known %s of [%s]", id, kindNouns[k], key), 0
	}
	delete(ref.keys[k], key)
	if ref.empty() {
		delete(r.nodes, id)
	}
	return fmt.Sprintf("Unregistered [%s] as %s of [%s]", id, kindNouns[k], key), 1
}

// dropAll removes every registration of node id.
func (r *registry) dropAll(id string) {
	for k := range r.lists {
		for key, l := range r.lists[k] {
			l = slices.DeleteFunc(l, func(p provider) bool { return p.id == id })
			if len(l) == 0 {
				delete(r.lists[k], key)
			} else {
				r.lists[k][key] = l
			}
		}
	}
	for key, s := range r.services {
		if s.id == id {
			delete(r.services, key)
		}
	}
	delete(r.nodes, id)
}

// apis returns the slave APIs registered for key as kind, in registration order.
func (r *registry) apis(k regKind, key string) []string {
	l := r.lists[k][key]
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = p.api
	}
	return out
}

// idsAt returns the node names registered with slave API api.
func (r *registry) idsAt(api string) []string {
	var out []string
	for id, ref := range r.nodes {
		if ref.api == api {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// state returns [key, [node names]] pairs of kind k, sorted by key.
func (r *registry) state(k regKind) []keyNodes {
	keys := slices.Sorted(maps.Keys(r.lists[k]))
	out := make([]keyNodes, len(keys))
	for i, key := range keys {
		l := r.lists[k][key]
		ids := make([]string, len(l))
		for j, p := range l {
			ids[j] = p.id
		}
		out[i] = keyNodes{key, ids}
	}
	return out
}

type keyNodes struct {
	key string
	ids []string
}
