// Full message definitions, as a bag's connection header stores them and rospy's _full_text
// gives them (genmsg's compute_full_text): the message's own text, then for each message it uses
// a line of 80 '=', "MSG: <type>" and that message's own text. The texts are Debian's ROS 1,
// byte for byte (trailing spaces included), and msgs/flowact_msgs/msg/Embedding.msg; msg.go
// holds their MD5 sums. TestDefinitions checks both against ROS: change them only from ROS's own
// output.

package dataset

// msgSep starts the text of a message that a definition uses: a line of 80 '='.
const msgSep = "\n" + "========================================" +
	"========================================" + "\nMSG: "

const jointStateDef = `# This is a message that holds data to describe the state of a set of torque controlled joints. 
#
# The state of each joint (revolute or prismatic) is defined by:
#  * the position of the joint (rad or m),
#  * the velocity of the joint (rad/s or m/s) and 
#  * the effort that is applied in the joint (Nm or N).
#
# Each joint is uniquely identified by its name
# The header specifies the time at which the joint states were recorded. All the joint states
# in one message have to be recorded at the same time.
#
# This message consists of a multiple arrays, one for each part of the joint state. 
# The goal is to make each of the fields optional. When e.g. your joints have no
# effort associated with them, you can leave the effort array empty. 
#
# All arrays in this message should have the same size, or be empty.
# This is the only way to uniquely associate the joint name with the correct
# states.


Header header

string[] name
float64[] position
float64[] velocity
float64[] effort
` + msgSep + "std_msgs/Header\n" + headerDef

// multiArrayHead is the start of std_msgs/Float32MultiArray and Float64MultiArray, which differ
// only in the type of their data line.
const multiArrayHead = `# Please look at the MultiArrayLayout message definition for
# documentation on all multiarrays.

MultiArrayLayout  layout        # specification of data layout
`

// multiArrayUses are the messages that both multiarrays use.
const multiArrayUses = msgSep + "std_msgs/MultiArrayLayout\n" + multiArrayLayoutDef +
	msgSep + "std_msgs/MultiArrayDimension\n" + multiArrayDimensionDef

const float32MultiArrayDef = multiArrayHead +
	"float32[]         data          # array of data\n\n" + multiArrayUses

const float64MultiArrayDef = multiArrayHead +
	"float64[]         data          # array of data\n\n" + multiArrayUses

const stringDef = `string data
`

const embeddingDef = `# A vision-language embedding for flowact's action expert.
#
# The payload is a tokens x width matrix of float32 values, row-major (token-major), packed as
# little-endian IEEE 754 bytes: element (i, j) occupies data[4*(i*width+j) : 4*(i*width+j)+4].
# len(data) must equal 4 * tokens * width. A uint8[] payload is used instead of float32[] because
# ROS client libraries (rospy's numpy path aside, and goroslib in particular) decode float32[]
# element by element, while uint8[] is one copy.
#
# header.stamp is when the images the embedding was computed from were captured; header.frame_id
# may name the VLM or camera.
Header header
uint32 tokens
uint32 width
uint8[] data
` + msgSep + "std_msgs/Header\n" + headerDef

// The own texts of the std_msgs messages used above.

const headerDef = `# Standard metadata for higher-level stamped data types.
# This is generally used to communicate timestamped data 
# in a particular coordinate frame.
# 
# sequence ID: consecutively increasing ID 
uint32 seq
#Two-integer timestamp that is expressed as:
# * stamp.sec: seconds (stamp_secs) since epoch (in Python the variable is called 'secs')
# * stamp.nsec: nanoseconds since stamp_secs (in Python the variable is called 'nsecs')
# time-handling sugar is provided by the client library
time stamp
#Frame this data is associated with
string frame_id
`

const multiArrayLayoutDef = `# The multiarray declares a generic multi-dimensional array of a
# particular data type.  Dimensions are ordered from outer most
# to inner most.

MultiArrayDimension[] dim # Array of dimension properties
uint32 data_offset        # padding elements at front of data

# Accessors should ALWAYS be written in terms of dimension stride
# and specified outer-most dimension first.
# 
# multiarray(i,j,k) = data[data_offset + dim_stride[1]*i + dim_stride[2]*j + k]
#
# A standard, 3-channel 640x480 image with interleaved color channels
# would be specified as:
#
# dim[0].label  = "height"
# dim[0].size   = 480
# dim[0].stride = 3*640*480 = 921600  (note dim[0] stride is just size of image)
# dim[1].label  = "width"
# dim[1].size   = 640
# dim[1].stride = 3*640 = 1920
# dim[2].label  = "channel"
# dim[2].size   = 3
# dim[2].stride = 3
#
# multiarray(i,j,k) refers to the ith row, jth column, and kth channel.
`

const multiArrayDimensionDef = `string label   # label of given dimension
uint32 size    # size of given dimension (in type units)
uint32 stride  # stride of given dimension`
